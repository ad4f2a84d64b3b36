"""ClientCredentials against a real server: requests and httpx auth, private_key_jwt,
the caller's own session (and its proxy), and discovery. The protected API is the server's
management API, reached with a management client's credentials."""

from __future__ import annotations

import asyncio
import json
import urllib.parse

import httpx
import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from m2m_auth_kit import ClientCredentials, TokenRequestError, TokenVerifier
from m2m_auth_kit.client import ASSERTION_TYPE

from .conftest import AUDIENCE, GUIDE_CLIENT


@pytest.fixture
def credentials(server):
    return ClientCredentials(server.token_url, server.mgmt_client_id, server.mgmt_client_secret)


def proxied_session(proxy) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # the proxy below, not one from the environment
    session.proxies = {"http": proxy.url}
    return session


def token_requests(proxy) -> list[dict[str, str]]:
    return [
        dict(urllib.parse.parse_qsl(body.decode()))
        for method, url, body in proxy.seen
        if method == "POST" and url.endswith("/oauth/token")
    ]


# --- requests and httpx --------------------------------------------------------------------------


def test_the_credentials_are_requests_auth_themselves(server, credentials):
    session = requests.Session()
    session.auth = credentials

    first = session.get(f"{server.url}/api/v1/organizations", timeout=10)
    second = session.get(f"{server.url}/api/v1/organizations", timeout=10)

    assert first.status_code == second.status_code == 200, first.text
    assert first.request.headers["Authorization"] == f"Bearer {credentials.token()}"


def test_the_credentials_are_httpx_auth_themselves(server, credentials):
    with httpx.Client(auth=credentials) as client:
        response = client.get(f"{server.url}/api/v1/organizations")

    assert response.status_code == 200, response.text
    assert response.request.headers["Authorization"] == f"Bearer {credentials.token()}"


def test_async_tasks_share_one_token_request(server, proxy):
    credentials = ClientCredentials(
        server.token_url,
        server.mgmt_client_id,
        server.mgmt_client_secret,
        session=proxied_session(proxy),
    )

    async def call() -> list[int]:
        async with httpx.AsyncClient(auth=credentials) as client:
            answers = await asyncio.gather(
                *(client.get(f"{server.url}/api/v1/organizations") for _ in range(10))
            )
        return [answer.status_code for answer in answers]

    assert asyncio.run(call()) == [200] * 10
    assert len(token_requests(proxy)) == 1


def test_async_tasks_fetch_one_token_through_the_proxy_of_the_async_client(server, proxy):
    async def call() -> list[int]:
        async with httpx.AsyncClient(proxy=proxy.url, trust_env=False) as client:
            client.auth = ClientCredentials(
                server.token_url,
                server.mgmt_client_id,
                server.mgmt_client_secret,
                session=client,  # token requests too go through it, on the event loop
            )
            answers = await asyncio.gather(
                *(client.get(f"{server.url}/api/v1/organizations") for _ in range(10))
            )
        return [answer.status_code for answer in answers]

    assert asyncio.run(call()) == [200] * 10
    assert token_requests(proxy) == [{"grant_type": "client_credentials"}]  # secret in Basic
    assert [method for method, _, _ in proxy.seen].count("GET") == 10


def test_a_refused_token_request_raises_from_the_session(server):
    credentials = ClientCredentials(server.token_url, server.mgmt_client_id, "not-the-secret")
    session = requests.Session()
    session.auth = credentials

    with pytest.raises(TokenRequestError) as caught:
        session.get(f"{server.url}/api/v1/organizations", timeout=10)

    assert caught.value.error == "invalid_client" and caught.value.status_code == 401


# --- Through the caller's own session ------------------------------------------------------------


def test_a_token_request_goes_through_the_proxy_of_the_requests_session(server, proxy):
    credentials = ClientCredentials(
        server.token_url,
        server.mgmt_client_id,
        server.mgmt_client_secret,
        session=proxied_session(proxy),
    )

    token = credentials.token()

    assert [(method, url) for method, url, _ in proxy.seen] == [("POST", server.token_url)]
    assert token_requests(proxy) == [{"grant_type": "client_credentials"}]  # secret in Basic
    assert token


def test_a_token_request_goes_through_the_proxy_of_the_httpx_client(server, proxy):
    with httpx.Client(proxy=proxy.url, trust_env=False) as client:
        credentials = ClientCredentials(
            server.token_url,
            server.mgmt_client_id,
            server.mgmt_client_secret,
            session=client,
        )
        credentials.token()

    assert [(method, url) for method, url, _ in proxy.seen] == [("POST", server.token_url)]


def test_a_session_that_uses_the_credentials_as_auth_fetches_the_token_without_them(server, proxy):
    session = proxied_session(proxy)
    session.auth = ClientCredentials(
        server.token_url, server.mgmt_client_id, server.mgmt_client_secret, session=session
    )

    response = session.get(f"{server.url}/api/v1/organizations", timeout=10)

    assert response.status_code == 200, response.text
    assert [url for _, url, _ in proxy.seen] == [
        server.token_url,
        f"{server.url}/api/v1/organizations",
    ]


def test_anything_else_as_a_session_is_refused_at_once(server):
    with pytest.raises(TypeError, match=r"requests\.Session, an httpx\.Client"):
        ClientCredentials(server.token_url, "id", "secret", session=object())


# --- private_key_jwt -----------------------------------------------------------------------------


def registered_client(mgmt, org, public_jwk):
    created = mgmt.clients.create(org.id, **GUIDE_CLIENT)
    mgmt.keys.add(org.id, created.client.client_id, public_jwk)
    return created.client.client_id


def rsa_pem_and_jwk() -> tuple[bytes, dict]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return pem, {**public, "alg": "RS256", "use": "sig"}


def test_private_key_jwt_with_a_pem_key(server, mgmt, org, proxy):
    pem, public = rsa_pem_and_jwk()
    client_id = registered_client(mgmt, org, public)
    credentials = ClientCredentials(
        server.token_url, client_id, private_key=pem, session=proxied_session(proxy)
    )

    first = credentials.token()
    credentials.invalidate()
    second = credentials.token()  # a replayed jti would be refused

    verifier = TokenVerifier(server.url, audience=AUDIENCE)
    assert verifier.verify(first).client_id == verifier.verify(second).client_id == client_id
    forms = token_requests(proxy)
    assert len(forms) == 2
    assertions = [
        jwt.decode(f["client_assertion"], options={"verify_signature": False}) for f in forms
    ]
    assert all(f["client_assertion_type"] == ASSERTION_TYPE for f in forms)
    assert all(f["client_id"] == client_id and "client_secret" not in f for f in forms)
    assert assertions[0]["jti"] != assertions[1]["jti"]
    for claims in assertions:
        assert claims["iss"] == claims["sub"] == client_id
        assert claims["aud"] == server.token_url
        assert 0 < claims["exp"] - claims["iat"] <= 60


def test_private_key_jwt_with_a_jwk_key_and_its_kid(server, mgmt, org, proxy):
    key = ec.generate_private_key(ec.SECP256R1())
    private = {**ECAlgorithm.to_jwk(key, as_dict=True), "kid": "deploy-2026", "alg": "ES256"}
    public = {name: value for name, value in private.items() if name != "d"}
    client_id = registered_client(mgmt, org, public)

    credentials = ClientCredentials(
        server.token_url,
        client_id,
        private_key=json.dumps(private),
        session=proxied_session(proxy),
    )
    token = credentials.token()

    assert TokenVerifier(server.url, audience=AUDIENCE).verify(token).client_id == client_id
    assertion = token_requests(proxy)[0]["client_assertion"]
    assert jwt.get_unverified_header(assertion)["kid"] == "deploy-2026"
    assert jwt.get_unverified_header(assertion)["alg"] == "ES256"


def test_a_key_that_is_not_registered_is_invalid_client(server, mgmt, org):
    _, public = rsa_pem_and_jwk()
    client_id = registered_client(mgmt, org, public)
    other_pem, _ = rsa_pem_and_jwk()

    with pytest.raises(TokenRequestError) as caught:
        ClientCredentials(server.token_url, client_id, private_key=other_pem).token()

    assert caught.value.error == "invalid_client" and caught.value.status_code == 401


def test_a_deleted_key_stops_working(server, mgmt, org):
    pem, public = rsa_pem_and_jwk()
    client_id = registered_client(mgmt, org, public)
    credentials = ClientCredentials(server.token_url, client_id, private_key=pem)
    credentials.token()

    [key] = mgmt.keys.list(org.id, client_id)
    mgmt.keys.delete(org.id, client_id, key.id)
    credentials.invalidate()

    assert mgmt.keys.list(org.id, client_id) == []
    with pytest.raises(TokenRequestError) as caught:
        credentials.token()
    assert caught.value.error == "invalid_client"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "one of client_secret, private_key or federated_token"),
        (
            {"client_secret": "s", "private_key": "k"},
            "one of client_secret, private_key or federated_token",
        ),
        ({"client_secret": "s", "auth_method": "private_key_jwt"}, "private_key_jwt needs"),
        ({"private_key": "not a key"}, "not an unencrypted PEM private key"),
        ({"client_secret": "s", "auth_method": "tls_client_auth"}, "auth_method must be"),
    ],
)
def test_a_wrong_configuration_is_refused_before_any_request(server, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClientCredentials(server.token_url, "client", **kwargs)


def test_a_public_key_cannot_sign(server):
    _, public = rsa_pem_and_jwk()

    with pytest.raises(ValueError, match="private key, not a public one"):
        ClientCredentials(server.token_url, "client", private_key=public)


# --- Discovery -----------------------------------------------------------------------------------


def test_from_issuer_finds_the_token_endpoint(server, proxy):
    credentials = ClientCredentials.from_issuer(
        server.url,
        server.mgmt_client_id,
        server.mgmt_client_secret,
        session=proxied_session(proxy),
    )

    assert credentials.token_url == server.token_url
    assert credentials.token()
    assert [url for _, url, _ in proxy.seen] == [
        f"{server.url}/.well-known/oauth-authorization-server",
        server.token_url,
    ]


def test_from_issuer_refuses_metadata_of_another_issuer(server):
    # Same server, another name: RFC 8414 §3.3 forbids using its metadata.
    other_name = server.url.replace("127.0.0.1", "localhost")

    with pytest.raises(TokenRequestError) as caught:
        ClientCredentials.from_issuer(other_name, "id", "secret")

    assert caught.value.error == "discovery_failed"
    assert "another issuer" in str(caught.value)


def test_from_issuer_without_metadata_is_discovery_failed(server):
    with pytest.raises(TokenRequestError) as caught:
        ClientCredentials.from_issuer(f"{server.url}/no/such/issuer", "id", "secret")

    # Both places RFC 8414 and the OIDC habit put the metadata were tried.
    assert caught.value.error == "discovery_failed"
    assert "/.well-known/oauth-authorization-server/no/such/issuer: HTTP " in str(caught.value)
    assert "/no/such/issuer/.well-known/oauth-authorization-server: HTTP " in str(caught.value)
