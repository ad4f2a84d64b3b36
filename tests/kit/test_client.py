"""ClientCredentials and its requests/httpx plug-ins against a real tiny server."""

import asyncio
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from requests.auth import AuthBase

from m2m_auth_kit.client import ClientCredentials, ClientCredentialsAuth, TokenRequestError
from tests.dpop_proofs import rfc7638_thumbprint
from tests.kit.server import CLIENT_ID, CLIENT_SECRET


@pytest.fixture
def credentials(kit):
    return ClientCredentials(
        kit.url("/token"), CLIENT_ID, CLIENT_SECRET, scope=["read", "write"], audience="api"
    )


# --- Tokens --------------------------------------------------------------------------------------


def test_it_caches_one_token_across_many_calls(kit, credentials):
    tokens = {credentials.token() for _ in range(100)}

    assert tokens == {"at-1"}
    assert kit.count("/token") == 1


def test_it_sends_a_client_credentials_grant_with_basic_auth(kit, credentials):
    credentials.token()

    # The server decodes Basic with form-decoding: ":", spaces, "+", "&" and "ü" survive.
    request = kit.token_requests[0]
    assert request["basic"] is True
    assert request["form"] == {
        "grant_type": "client_credentials",
        "scope": "read write",
        "audience": "api",
    }


def test_client_secret_post_puts_credentials_in_the_body(kit):
    credentials = ClientCredentials(
        kit.url("/token"), CLIENT_ID, CLIENT_SECRET, auth_method="client_secret_post"
    )

    assert credentials.token() == "at-1"
    request = kit.token_requests[0]
    assert request["basic"] is False
    assert request["form"] == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }


def test_twenty_threads_share_a_single_token_request(kit, credentials):
    kit.token_delay = 0.2  # keep the first request in flight while the others ask
    barrier = threading.Barrier(20)

    def ask(_):
        barrier.wait()
        return credentials.token()

    with ThreadPoolExecutor(max_workers=20) as pool:
        tokens = list(pool.map(ask, range(20)))

    assert tokens == ["at-1"] * 20
    assert kit.count("/token") == 1


def test_it_refreshes_refresh_margin_before_expiry(kit):
    kit.token_expires_in = 3
    credentials = ClientCredentials(kit.url("/token"), CLIENT_ID, CLIENT_SECRET, refresh_margin=1)

    assert credentials.token() == "at-1"
    time.sleep(1.2)
    assert credentials.token() == "at-1"  # 1.8 s left: still more than the margin
    time.sleep(1.0)
    assert credentials.token() == "at-2"  # 0.8 s left: inside the margin
    assert kit.count("/token") == 2


def test_the_margin_never_exceeds_half_the_lifetime(kit):
    kit.token_expires_in = 2
    credentials = ClientCredentials(kit.url("/token"), CLIENT_ID, CLIENT_SECRET, refresh_margin=30)

    assert credentials.token() == credentials.token() == "at-1"
    time.sleep(1.1)
    assert credentials.token() == "at-2"


def test_without_expires_in_the_token_is_still_reused(kit, credentials):
    kit.token_expires_in = None

    assert credentials.token() == credentials.token() == "at-1"


def test_invalidate_forces_a_new_token(kit, credentials):
    credentials.token()
    credentials.invalidate()

    assert credentials.token() == "at-2"


# --- Errors --------------------------------------------------------------------------------------


def test_it_raises_the_oauth_error(kit, credentials):
    kit.token_error = (400, {"error": "invalid_scope", "error_description": "no such scope"})

    with pytest.raises(TokenRequestError) as caught:
        credentials.token()

    assert caught.value.error == "invalid_scope"
    assert caught.value.error_description == "no such scope"
    assert caught.value.status_code == 400


def test_bad_credentials_are_invalid_client(kit):
    credentials = ClientCredentials(kit.url("/token"), CLIENT_ID, "wrong")

    with pytest.raises(TokenRequestError) as caught:
        credentials.token()

    assert caught.value.error == "invalid_client"
    assert caught.value.status_code == 401
    assert "wrong" not in str(caught.value) and "wrong" not in repr(credentials)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ((502, b"<html>bad gateway</html>"), "invalid_response"),
        ((200, {"token_type": "Bearer"}), "invalid_response"),
        ((200, {"access_token": "x", "token_type": "mac"}), "invalid_response"),
        ((500, {"error": "server_error"}), "server_error"),
    ],
)
def test_it_rejects_answers_that_are_not_tokens(kit, credentials, answer, error):
    kit.token_error = answer

    with pytest.raises(TokenRequestError) as caught:
        credentials.token()

    assert caught.value.error == error


def test_an_unreachable_server_is_request_failed(kit, credentials):
    kit.stop()

    with pytest.raises(TokenRequestError) as caught:
        credentials.token()

    assert caught.value.error == "request_failed"


# --- requests ------------------------------------------------------------------------------------


def test_requests_auth_sets_the_bearer_header(kit, credentials):
    auth = credentials.requests_auth()

    response = requests.get(kit.url("/resource"), auth=auth, timeout=5)

    assert isinstance(auth, AuthBase)
    assert response.status_code == 200
    assert response.json()["token"] == "at-1"


def test_requests_retries_once_with_a_new_token_after_401(kit, credentials):
    credentials.token()
    kit.revoked_api_tokens.add("at-1")

    with requests.Session() as session:
        session.auth = ClientCredentialsAuth(credentials)
        response = session.post(kit.url("/resource"), data=b"payload", timeout=5)

    assert response.status_code == 200
    assert response.json() == {"token": "at-2", "body": "payload"}
    assert [r.status_code for r in response.history] == [401]
    assert kit.count("/resource") == 2
    assert kit.count("/token") == 2


def test_requests_gives_up_after_one_retry(kit, credentials):
    kit.revoked_api_tokens.update({"at-1", "at-2", "at-3"})

    response = requests.get(kit.url("/resource"), auth=credentials.requests_auth(), timeout=5)

    assert response.status_code == 401
    assert kit.count("/resource") == 2
    assert kit.count("/token") == 2


def test_concurrent_401s_share_one_new_token(kit, credentials):
    credentials.token()
    kit.revoked_api_tokens.add("at-1")
    auth = credentials.requests_auth()

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(
            pool.map(
                lambda _: requests.get(kit.url("/resource"), auth=auth, timeout=5).json(),
                range(10),
            )
        )

    assert {answer["token"] for answer in answers} == {"at-2"}
    assert kit.count("/token") == 2


# --- httpx ---------------------------------------------------------------------------------------


def test_httpx_auth_retries_once_with_a_new_token_after_401(kit, credentials):
    credentials.token()
    kit.revoked_api_tokens.add("at-1")
    auth = credentials.httpx_auth()

    with httpx.Client(auth=auth) as client:
        response = client.post(kit.url("/resource"), content=b"payload")
        again = client.get(kit.url("/resource"))

    assert isinstance(auth, httpx.Auth)
    assert response.status_code == 200
    assert response.json() == {"token": "at-2", "body": "payload"}
    assert again.json()["token"] == "at-2"
    assert kit.count("/token") == 2


def test_httpx_gives_up_after_one_retry(kit, credentials):
    kit.revoked_api_tokens.update({"at-1", "at-2", "at-3"})

    with httpx.Client(auth=credentials.httpx_auth()) as client:
        response = client.get(kit.url("/resource"))

    assert response.status_code == 401
    assert kit.count("/resource") == 2


def test_httpx_async_auth_retries_too(kit, credentials):
    kit.revoked_api_tokens.add("at-1")

    async def call():
        async with httpx.AsyncClient(auth=credentials.httpx_auth()) as client:
            first = await client.get(kit.url("/resource"))
            kit.revoked_api_tokens.add("at-2")
            second = await client.post(kit.url("/resource"), content=b"x")
            return first, second

    first, second = asyncio.run(call())

    assert first.json()["token"] == "at-2"
    assert second.json() == {"token": "at-3", "body": "x"}


# --- Standing alone ------------------------------------------------------------------------------


def test_the_kit_imports_without_django_requests_or_httpx():
    code = (
        "import sys\n"
        "for name in ('requests', 'httpx', 'django', 'rest_framework'):\n"
        "    sys.modules[name] = None  # makes 'import name' fail\n"
        "import m2m_auth_kit.client, m2m_auth_kit.verify\n"
        "m2m_auth_kit.client.ClientCredentials('https://a.test/token', 'id', 'secret')\n"
        "m2m_auth_kit.verify.TokenVerifier('https://a.test')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )

    assert result.returncode == 0, result.stderr


# --- Discovery (from_issuer) ---------------------------------------------------------------------


def test_from_issuer_uses_basic_unless_the_server_lists_only_post(kit):
    assert ClientCredentials.from_issuer(kit.issuer, "id", "s").auth_method == (
        "client_secret_basic"
    )
    kit.metadata_changes["token_endpoint_auth_methods_supported"] = ["client_secret_post"]

    credentials = ClientCredentials.from_issuer(kit.issuer, CLIENT_ID, CLIENT_SECRET)

    assert credentials.auth_method == "client_secret_post"
    assert credentials.token() == "at-1"
    assert kit.token_requests[0]["basic"] is False


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"token_endpoint": None}, "no token_endpoint"),
        ({"issuer": "https://elsewhere.test"}, "names another issuer"),
    ],
)
def test_from_issuer_refuses_unusable_metadata(kit, changes, message):
    kit.metadata_changes.update(changes)

    with pytest.raises(TokenRequestError, match=message) as caught:
        ClientCredentials.from_issuer(kit.issuer, CLIENT_ID, CLIENT_SECRET)

    assert caught.value.error == "discovery_failed"


def test_from_issuer_of_an_unreachable_server_is_discovery_failed():
    with pytest.raises(TokenRequestError) as caught:
        ClientCredentials.from_issuer("http://127.0.0.1:9", CLIENT_ID, CLIENT_SECRET, timeout=2)

    assert caught.value.error == "discovery_failed"


def test_the_credentials_are_requests_and_httpx_auth_themselves(kit, credentials):
    session = requests.Session()
    session.auth = credentials
    kit.revoked_api_tokens.add("at-1")

    assert session.get(kit.url("/resource"), timeout=5).json()["token"] == "at-2"  # retried
    with httpx.Client(auth=credentials) as client:
        assert client.get(kit.url("/resource")).json()["token"] == "at-2"
    assert isinstance(credentials, AuthBase) and isinstance(credentials, httpx.Auth)
    assert credentials.httpx_auth() is credentials


@pytest.mark.parametrize(
    ("private_key", "message"),
    [
        ({"kty": "RSA", "n": "AQAB"}, "not a usable JWK"),
        ('{"kty": "EC", ', "not JSON"),
        (
            "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n",
            "not an unencrypted PEM",
        ),
        ({"kty": "oct", "k": "c2VjcmV0"}, "private key, not a public one|no signing algorithm"),
    ],
)
def test_an_unusable_private_key_is_refused_at_construction(private_key, message):
    with pytest.raises(ValueError, match=message):
        ClientCredentials("https://a.test/token", "id", private_key=private_key)


# --- Async httpx through the caller's AsyncClient -------------------------------------------------


class RecordingTransport(httpx.AsyncHTTPTransport):
    """A real async transport that notes each request's path: what the AsyncClient sent."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await super().handle_async_request(request)


def async_credentials(kit, client: httpx.AsyncClient, secret: str = CLIENT_SECRET):
    return ClientCredentials(kit.url("/token"), CLIENT_ID, secret, session=client)


def test_async_tasks_share_one_token_request_sent_by_the_async_client(kit):
    kit.token_delay = 0.2  # every task arrives while the first fetch is in flight
    transport = RecordingTransport()

    async def call():
        async with httpx.AsyncClient(transport=transport) as client:
            client.auth = async_credentials(kit, client)
            answers = await asyncio.gather(*(client.get(kit.url("/resource")) for _ in range(10)))
        return [answer.json()["token"] for answer in answers]

    assert asyncio.run(call()) == ["at-1"] * 10
    assert kit.count("/token") == 1
    # The token request went through the AsyncClient (its transport), not urllib in a thread.
    assert transport.paths.count("/token") == 1 and transport.paths.count("/resource") == 10


def test_an_async_retry_after_401_fetches_once_through_the_async_client(kit):
    transport = RecordingTransport()
    kit.revoked_api_tokens.add("at-1")

    async def call():
        async with httpx.AsyncClient(transport=transport) as client:
            client.auth = async_credentials(kit, client)
            first = await client.get(kit.url("/resource"))
            concurrent = await asyncio.gather(*(client.get(kit.url("/resource")) for _ in range(5)))
            kit.revoked_api_tokens.add("at-2")
            retried = await asyncio.gather(*(client.get(kit.url("/resource")) for _ in range(5)))
        return first, concurrent, retried

    first, concurrent, retried = asyncio.run(call())

    assert first.json()["token"] == "at-2"
    assert {answer.json()["token"] for answer in concurrent} == {"at-2"}
    # Five concurrent 401s for at-2 drop it once: one new token, not five.
    assert {answer.json()["token"] for answer in retried} == {"at-3"}
    assert kit.count("/token") == 3 == transport.paths.count("/token")


def test_one_credentials_object_serves_one_event_loop_after_another(kit):
    async def call(credentials):
        async with httpx.AsyncClient() as client:
            credentials.session = client
            tokens = await asyncio.gather(*(credentials.atoken() for _ in range(3)))
        credentials.invalidate()
        return tokens

    credentials = ClientCredentials(kit.url("/token"), CLIENT_ID, CLIENT_SECRET)

    assert asyncio.run(call(credentials)) == ["at-1"] * 3
    assert asyncio.run(call(credentials)) == ["at-2"] * 3


def test_atoken_without_a_session_fetches_in_a_thread(kit, credentials):
    assert asyncio.run(credentials.atoken()) == "at-1"
    assert credentials.token() == "at-1"


def test_a_refused_async_token_request_raises_token_request_error(kit):
    async def call():
        async with httpx.AsyncClient() as client:
            client.auth = async_credentials(kit, client, secret="wrong")
            await client.get(kit.url("/resource"))

    with pytest.raises(TokenRequestError) as caught:
        asyncio.run(call())

    assert (caught.value.error, caught.value.status_code) == ("invalid_client", 401)
    assert kit.count("/resource") == 0


def test_an_unreachable_token_endpoint_through_the_async_client_is_request_failed():
    async def call():
        async with httpx.AsyncClient() as client:
            credentials = ClientCredentials("http://127.0.0.1:9/token", "id", "s", session=client)
            return await credentials.atoken()

    with pytest.raises(TokenRequestError) as caught:
        asyncio.run(call())

    assert caught.value.error == "request_failed" and caught.value.status_code is None


def test_sync_uses_of_an_async_client_session_are_refused(kit):
    from m2m_auth_kit.management import ManagementClient

    client = httpx.AsyncClient()
    credentials = async_credentials(kit, client)

    with pytest.raises(TypeError, match="atoken"):
        credentials.token()
    with pytest.raises(TypeError, match="AsyncClient"):
        ClientCredentials.from_issuer(kit.issuer, CLIENT_ID, CLIENT_SECRET, session=client)
    with pytest.raises(TypeError, match="AsyncClient"):
        ManagementClient(kit.issuer, CLIENT_ID, CLIENT_SECRET, session=client)
    with pytest.raises(TypeError, match=r"requests\.Session, an httpx\.Client"):
        ClientCredentials(kit.url("/token"), CLIENT_ID, CLIENT_SECRET, session=object())
    assert kit.count("/token") == 0 and kit.count("/.well-known/oauth-authorization-server") == 0


def test_a_thread_fetching_a_token_never_blocks_the_event_loop(kit, credentials):
    kit.token_delay = 1.0
    fetching = threading.Thread(target=credentials.token)
    fetching.start()
    for _ in range(1000):  # until the thread holds the lock, in its slow fetch
        if kit.token_requests:
            break
        time.sleep(0.01)
    issued_while_the_loop_ran = []

    async def other():
        issued_while_the_loop_ran.append(kit.issued)

    async def main():
        return await asyncio.gather(credentials.atoken(), other())

    token, _ = asyncio.run(main())
    fetching.join()

    # The other task ran while the thread's token was still being issued: the task that needed
    # a token waited for it off the loop.
    assert issued_while_the_loop_ran == [0]
    assert token == "at-1" and kit.count("/token") == 1


# --- Workload identity federation: federated_token -----------------------------------------------

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def test_a_federated_token_callable_is_sent_as_a_jwt_bearer_grant(kit):
    calls = []

    def oidc_token() -> str:
        calls.append(1)
        return f"workload-token-{len(calls)}\n"

    credentials = ClientCredentials(
        kit.url("/token"), CLIENT_ID, federated_token=oidc_token, scope="read"
    )
    with pytest.raises(TokenRequestError):  # the tiny server knows only secrets
        credentials.token()
    request = kit.token_requests[0]
    assert request["basic"] is False
    assert request["form"] == {
        "grant_type": JWT_BEARER,
        "client_id": CLIENT_ID,
        "assertion": "workload-token-1",
        "scope": "read",
    }
    with pytest.raises(TokenRequestError):
        credentials.token()
    assert kit.token_requests[1]["form"]["assertion"] == "workload-token-2"  # asked again


def test_a_federated_token_file_is_read_again_when_it_changes(kit, tmp_path):
    path = tmp_path / "token"
    path.write_text("first-token\n")
    credentials = ClientCredentials(kit.url("/token"), CLIENT_ID, federated_token=str(path))
    for _ in range(2):
        with pytest.raises(TokenRequestError):
            credentials.token()
    path.write_text("second, longer token\n")  # Kubernetes rewrites the projected file
    with pytest.raises(TokenRequestError):
        credentials.token()
    sent = [request["form"]["assertion"] for request in kit.token_requests]
    assert sent == ["first-token", "first-token", "second, longer token"]


def test_an_unreadable_or_empty_federated_token_is_a_clear_error(kit, tmp_path):
    missing = ClientCredentials(kit.url("/token"), CLIENT_ID, federated_token=tmp_path / "none")
    with pytest.raises(TokenRequestError) as caught:
        missing.token()
    assert caught.value.error == "federated_token_unavailable"
    empty = ClientCredentials(kit.url("/token"), CLIENT_ID, federated_token=lambda: "  ")
    with pytest.raises(TokenRequestError) as caught:
        empty.token()
    assert caught.value.error == "federated_token_unavailable"
    assert kit.token_requests == []


@pytest.mark.parametrize(
    "options",
    [
        {"client_secret": CLIENT_SECRET, "federated_token": lambda: "t"},
        {"federated_token": lambda: "t", "auth_method": "client_secret_post"},
        {"federated_token": 42},
        {},
    ],
)
def test_federated_token_is_the_only_credential(kit, options):
    with pytest.raises(ValueError):
        ClientCredentials(kit.url("/token"), CLIENT_ID, **options)


# --- DPoP (RFC 9449) ------------------------------------------------------------------------------


def test_a_dpop_caller_refuses_a_token_that_is_not_bound(kit):
    """A server that ignores the proof and answers a bearer token: the caller says so."""
    credentials = ClientCredentials(kit.url("/token"), CLIENT_ID, CLIENT_SECRET, dpop=True)
    with pytest.raises(TokenRequestError, match="token_type is not DPoP") as raised:
        credentials.token()
    assert raised.value.error == "invalid_response"


def test_a_dpop_key_must_suit_dpop():
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="DPoP key's algorithm"):
        ClientCredentials("https://as.example/token", CLIENT_ID, CLIENT_SECRET, dpop_key=p384)
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError):
        ClientCredentials("https://as.example/token", CLIENT_ID, CLIENT_SECRET, dpop_key=pem)


def test_a_given_dpop_key_is_used_and_its_thumbprint_known():
    key = ec.generate_private_key(ec.SECP256R1())
    credentials = ClientCredentials(
        "https://as.example/token",
        CLIENT_ID,
        CLIENT_SECRET,
        dpop_key=ECAlgorithm.to_jwk(key, as_dict=True),
    )
    public = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    assert credentials.dpop_jkt == rfc7638_thumbprint(public)
    assert ClientCredentials("https://as.example/token", CLIENT_ID, CLIENT_SECRET).dpop_jkt is None
