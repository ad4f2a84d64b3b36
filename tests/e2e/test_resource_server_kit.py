"""The resource-server kit end to end: our server and the example deployment API as real processes.

Our authorization server runs under gunicorn (``tests.e2e.server``); the example API
(``examples/deployment_api``) runs under gunicorn too, trusting our server as its issuer and
finding the JWKS through discovery. Clients are registered through the management API and get
their tokens from the real token endpoint.

How the refused tokens are made, so that each one differs from a good token in one way only:

* wrong audience, missing scope: real tokens from our token endpoint, for clients registered
  with another audience or fewer scopes;
* tampered: a real token whose payload was edited (a scope added) after signing;
* wrong issuer, expired, not yet valid: signed by our server's *current signing key*, by the
  server's own signing code (``LoadedKey.encode``) run in the server's environment through
  ``manage.py shell``, with one claim changed. The private key never leaves the server's
  environment, and a control token minted the same way with unchanged claims is accepted, so
  each refusal is down to the one claim (the test also checks the refusal's description);
* ``alg: none``, HS256 keyed with our published public key, unknown ``kid``: built by hand
  here, as an attacker would, with our real ``kid`` where one is needed.

JWKS fetches and token requests are counted in our server's gunicorn access log. In
introspection mode the kit refuses a revoked token, which verification with the JWKS alone still
accepts (the documented limit of stateless verification).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from m2m_auth_kit.client import ClientCredentials
from m2m_auth_kit.verify import InvalidToken, TokenVerifier
from tests.conftest import GUIDE_CLIENT
from tests.dpop_proofs import ProofKey, rfc9449_check
from tests.e2e.server import (
    ROOT,
    ServerProcess,
    child_env,
    free_port,
    running_server,
    spawn,
    terminate,
)

pytestmark = pytest.mark.e2e

AUDIENCE = "deployment-api.acmecorp.com"
# The example API's default MIN_REFETCH_INTERVAL (the kit's default too).
REFETCH_INTERVAL = 5.0
DEPLOYMENT = {"application": "inventory-service", "version": "1.4.2", "environment": "prod"}


# --- Processes -----------------------------------------------------------------------------------


class ExampleAPI:
    """``gunicorn examples.deployment_api.wsgi``: one worker, many threads, one shared verifier."""

    def __init__(self, issuer: str, log_dir: Path, *, extra_env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"example-api-{self.port}.log"
        self.env = child_env(
            **{
                "DJANGO_SETTINGS_MODULE": "examples.deployment_api.settings",
                "ISSUER": issuer,
                "MIN_REFETCH_INTERVAL": str(REFETCH_INTERVAL),
                **(extra_env or {}),
            }
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> ExampleAPI:
        self.process = spawn(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "examples.deployment_api.wsgi",
                "--worker-class",
                "gthread",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "1",
                "--threads",
                "8",
                "--access-logfile",
                "-",
            ],
            env=self.env,
            log_path=self.log_path,
            # Unauthenticated, so it fetches nothing from the issuer.
            ready=lambda: requests.get(f"{self.url}/deployments", timeout=5).status_code == 401,
        )
        return self

    def stop(self) -> None:
        terminate(self.process)

    def log_text(self) -> str:
        return self.log_path.read_text()


def access_log_count(server: ServerProcess, method: str, path: str) -> int:
    """How many requests for ``method path`` our server has logged so far."""
    # The log line is written just after the response went out; let it land.
    time.sleep(0.3)
    # gunicorn's access-log request line ("GET /path HTTP/1.1"), not the app's JSON log line.
    pattern = rf'"{method} {re.escape(path)}(?:\?[^ "]*)? HTTP/'
    return len(re.findall(pattern, server.log_text()))


def jwks_hits(server: ServerProcess) -> int:
    return access_log_count(server, "GET", "/.well-known/jwks.json")


def token_requests(server: ServerProcess) -> int:
    return access_log_count(server, "POST", "/oauth/token")


# --- Clients, registered through the management API ----------------------------------------------


def register_clients(server: ServerProcess) -> dict[str, Any]:
    """An organization with four clients; returns their credentials, the org id, and the
    management client that registered them (``management``)."""
    management = server.management("kit-e2e")
    api = requests.Session()
    api.headers.update(management.headers)
    response = api.post(
        f"{server.url}/api/v1/organizations", json={"display_name": "Acme Corp"}, timeout=10
    )
    assert response.status_code == 201, response.text
    org_id = response.json()["organization"]["id"]
    bodies = {
        "deployer": GUIDE_CLIENT,
        "reader": {**GUIDE_CLIENT, "name": "Dashboard", "scopes": ["read:deployments"]},
        "elsewhere": {**GUIDE_CLIENT, "name": "Billing bot", "audience": ["billing.acmecorp.com"]},
        "short": {**GUIDE_CLIENT, "name": "Short-lived", "expiry": 60},
    }
    registered: dict[str, Any] = {"org_id": org_id, "management": management}
    for name, body in bodies.items():
        response = api.post(
            f"{server.url}/api/v1/organizations/{org_id}/clients", json=body, timeout=10
        )
        assert response.status_code == 201, response.text
        registered[name] = (response.json()["client"]["client_id"], response.json()["plain_secret"])
    return registered


def credentials_for(server: ServerProcess, client: tuple[str, str], **kwargs: Any):
    return ClientCredentials(f"{server.url}/oauth/token", client[0], client[1], **kwargs)


# --- Tokens that are not what they claim ---------------------------------------------------------

MINT_WITH_SERVER_KEY = """
import json, sys
from oauth import keys
key = keys.current_loaded_key()
claim_sets = json.loads(sys.stdin.read())
print(json.dumps({name: key.encode(claims) for name, claims in claim_sets.items()}))
"""


def mint_with_server_key(server: ServerProcess, claim_sets: dict[str, dict]) -> dict[str, str]:
    """Tokens signed by the server's current key, by its own signing code, in its environment."""
    result = server.manage(
        "shell", "--no-imports", "-c", MINT_WITH_SERVER_KEY, input=json.dumps(claim_sets)
    )
    return json.loads(result.stdout)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def segment_json(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def build_forged_tokens(server: ServerProcess, clients: dict[str, Any]) -> dict[str, str]:
    """Every refused case of the issue, plus ``control``: minted like the forged ones, but good."""
    good = server.access_token(*clients["deployer"])
    header_segment, payload_segment, _ = good.split(".")
    header, claims = segment_json(header_segment), segment_json(payload_segment)
    now = int(time.time())
    fresh = {**claims, "iat": now, "nbf": now, "exp": now + 600, "jti": uuid.uuid4().hex}
    tokens = mint_with_server_key(
        server,
        {
            "control": fresh,
            "wrong_issuer": {**fresh, "iss": "http://127.0.0.1:1"},
            # Past the verifier's 30 s leeway, both ways.
            "expired": {**fresh, "iat": now - 900, "nbf": now - 900, "exp": now - 300},
            "not_yet_valid": {**fresh, "nbf": now + 300},
        },
    )
    # A reader edits its real token to add the scope it lacks; the signature stays.
    reader = server.access_token(*clients["reader"])
    reader_header, reader_payload, reader_signature = reader.split(".")
    edited = segment_json(reader_payload)
    edited["scopes"] = ["deploy:applications", "read:deployments"]
    edited["scope"] = "deploy:applications read:deployments"
    tokens["tampered"] = f"{reader_header}.{b64url_json(edited)}.{reader_signature}"

    tokens["alg_none"] = f"{b64url_json({**header, 'alg': 'none'})}.{payload_segment}."

    # The classic confusion attack: HMAC with the issuer's public key (PEM) as the secret.
    jwks = requests.get(f"{server.url}/.well-known/jwks.json", timeout=10).json()
    jwk = next(key for key in jwks["keys"] if key["kid"] == header["kid"])
    public_pem = jwt.PyJWK(jwk).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{b64url_json({**header, 'alg': 'HS256'})}.{payload_segment}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    tokens["hs256_public_key"] = f"{signing_input}.{b64url(mac)}"

    tokens["unknown_kid"] = jwt.encode(
        fresh, attacker_key(), algorithm="RS256", headers={"kid": "forged-kid", "typ": "at+jwt"}
    )
    tokens["wrong_audience"] = server.access_token(*clients["elsewhere"])
    return tokens


_attacker_key: rsa.RSAPrivateKey | None = None


def attacker_key() -> rsa.RSAPrivateKey:
    global _attacker_key
    if _attacker_key is None:
        _attacker_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _attacker_key


def forged_kid_token(claims: dict[str, Any]) -> str:
    return jwt.encode(
        claims,
        attacker_key(),
        algorithm="RS256",
        headers={"kid": f"forged-{uuid.uuid4().hex}", "typ": "at+jwt"},
    )


# --- Fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("kit-server")) as process:
        yield process


@pytest.fixture(scope="module")
def clients(server):
    return register_clients(server)


@pytest.fixture(scope="module")
def api(server, tmp_path_factory):
    example = ExampleAPI(server.url, tmp_path_factory.mktemp("kit-api")).start()
    yield example
    example.stop()


@pytest.fixture(scope="module")
def forged(server, clients):
    return build_forged_tokens(server, clients)


def call(api: ExampleAPI, method: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if method == "POST":
        return requests.post(f"{api.url}/deployments", json=DEPLOYMENT, headers=headers, timeout=10)
    return requests.get(f"{api.url}/deployments", headers=headers, timeout=10)


# The DPoP challenge the kit offers beside Bearer's (RFC 9449 §7.1).
DPOP = 'DPoP realm="api", algs="ES256 RS256 PS256 EdDSA"'


def invalid_token_challenge(description: str) -> str:
    return f'Bearer realm="api", error="invalid_token", error_description="{description}", {DPOP}'


# POST goes through m2m_auth_kit.guards.require_scopes, GET through DRF's BearerTokenAuthentication.
ROUTES = ["POST", "GET"]


# --- Accepted ------------------------------------------------------------------------------------


def test_a_token_from_our_server_is_accepted_on_both_routes(server, clients, api):
    token = server.access_token(*clients["deployer"])

    created = call(api, "POST", token)
    assert created.status_code == 201, created.text
    deployment = created.json()["deployment"]
    assert deployment["requested_by"] == clients["deployer"][0]
    assert deployment["repository"] == "acmecorp/inventory-service"  # a custom claim

    listed = call(api, "GET", token)
    assert listed.status_code == 200, listed.text
    assert deployment in listed.json()["deployments"]
    assert listed.json()["client_id"] == clients["deployer"][0]


def test_the_forging_path_itself_yields_accepted_tokens(api, forged):
    # Without this, the refusals below could be the minting's fault rather than the claim's.
    for method in ROUTES:
        response = call(api, method, forged["control"])
        assert response.status_code in (200, 201), response.text


@pytest.mark.parametrize("method", ROUTES)
def test_no_token_is_refused_with_a_bare_challenge(api, method):
    response = call(api, method, None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == f'Bearer realm="api", {DPOP}'


# --- Refused -------------------------------------------------------------------------------------

REFUSALS = {
    "wrong_issuer": "the token was issued by an untrusted issuer",
    "wrong_audience": "the token is not meant for this audience",
    "expired": "the token has expired",
    "not_yet_valid": "the token is not yet valid",
    "tampered": "the token signature is invalid",
    "alg_none": "the token algorithm is not allowed",
    "hs256_public_key": "the token algorithm is not allowed",
    "unknown_kid": "the token was signed with an unknown key",
}


@pytest.mark.parametrize("method", ROUTES)
@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_bad_token_is_refused_with_invalid_token(api, forged, case, method):
    response = call(api, method, forged[case])
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == invalid_token_challenge(REFUSALS[case])


def test_a_missing_scope_is_refused_with_insufficient_scope(server, clients, api):
    # The decorator (POST): a client registered without deploy:applications.
    reader = server.access_token(*clients["reader"])
    response = call(api, "POST", reader)
    assert response.status_code == 403, response.text
    assert response.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_scope", scope="deploy:applications"'
    )
    assert response.json()["scope"] == "deploy:applications"
    assert call(api, "GET", reader).status_code == 200

    # DRF (GET): the deployer asked our server for a narrower token.
    narrowed = server.access_token(*clients["deployer"], scope="deploy:applications")
    response = call(api, "GET", narrowed)
    assert response.status_code == 403, response.text
    assert response.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_scope", scope="read:deployments"'
    )
    assert call(api, "POST", narrowed).status_code == 201


# --- Keys: rotation, forged-kid floods -----------------------------------------------------------


def test_a_signing_key_rotation_is_picked_up_without_a_restart(server, clients, api):
    credentials = credentials_for(server, clients["deployer"])
    old_token = credentials.token()
    assert call(api, "GET", old_token).status_code == 200
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    master_pid = api.process.pid
    # An unknown kid may refetch once per interval; make sure this one is allowed to.
    time.sleep(REFETCH_INTERVAL + 0.5)
    fetches_before = jwks_hits(server)

    rotated = server.manage("rotate_signing_key").stdout
    new_kid = re.search(r"new current signing key (\S+)", rotated).group(1)
    credentials.invalidate()
    new_token = credentials.token()
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid != old_kid

    assert call(api, "POST", new_token).status_code == 201
    assert call(api, "GET", new_token).status_code == 200
    # Tokens signed before the rotation stay good: the old key is still published.
    assert call(api, "GET", old_token).status_code == 200
    assert jwks_hits(server) - fetches_before == 1
    # Same process, same single worker: picked up live, not by a restart.
    assert api.process.poll() is None and api.process.pid == master_pid
    assert api.log_text().count("Booting worker") == 1


def test_a_flood_of_forged_kids_costs_at_most_one_jwks_fetch_per_interval(server, clients, api):
    claims = segment_json(server.access_token(*clients["deployer"]).split(".")[1])
    tokens = [forged_kid_token(claims) for _ in range(1000)]
    time.sleep(REFETCH_INTERVAL + 0.5)  # the window is open: the first forged kid may refetch
    fetches_before = jwks_hits(server)
    local = threading.local()

    def send(index: int) -> tuple[int, str]:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        method = "POST" if index % 2 else "GET"
        response = local.session.request(
            method,
            f"{api.url}/deployments",
            json=DEPLOYMENT if method == "POST" else None,
            headers={"Authorization": f"Bearer {tokens[index]}"},
            timeout=30,
        )
        return response.status_code, response.headers.get("WWW-Authenticate", "")

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, range(len(tokens))))
    elapsed = time.monotonic() - started
    fetches = jwks_hits(server) - fetches_before

    assert answers == [(401, invalid_token_challenge(REFUSALS["unknown_kid"]))] * len(tokens)
    # Fetches start at least REFETCH_INTERVAL apart, so a burst lasting `elapsed` seconds
    # allows at most this many; the first forged kid did trigger one.
    allowed = math.floor(elapsed / REFETCH_INTERVAL) + 1
    print(f"\n1000 forged-kid requests in {elapsed:.2f}s caused {fetches} JWKS fetch(es)")
    assert 1 <= fetches <= allowed


# --- Revocation: introspection mode --------------------------------------------------------------


def test_the_kit_in_introspect_mode_refuses_a_revoked_token(server, clients):
    management = clients["management"]
    customer_id, customer_secret = clients["deployer"]
    token, unrelated = (server.access_token(*clients["deployer"]) for _ in range(2))

    def introspecting() -> TokenVerifier:
        return TokenVerifier(
            server.url,
            audience=AUDIENCE,
            introspect=True,
            client_id=management.client_id,
            client_secret=management.client_secret,
        )

    jwks_only = TokenVerifier(server.url, audience=AUDIENCE)
    assert introspecting().verify(token).client_id == customer_id

    response = requests.post(
        f"{server.url}/oauth/revoke",
        data={"token": token, "token_type_hint": "access_token"},
        auth=(customer_id, customer_secret),
        timeout=10,
    )
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"

    # A fresh verifier (no cached positive answer) sees the revocation at once...
    fresh = introspecting()
    with pytest.raises(InvalidToken):
        fresh.verify(token)
    assert fresh.verify(unrelated).client_id == customer_id
    # ...while JWKS-only verification cannot know and still accepts the token.
    assert jwks_only.verify(token).client_id == customer_id


# --- The calling side ----------------------------------------------------------------------------


def test_the_client_caches_one_token_across_many_calls(server, clients, api):
    before = token_requests(server)
    credentials = credentials_for(server, clients["deployer"])
    auth = credentials.requests_auth()
    go = threading.Barrier(8)

    def work(_: int) -> list[int]:
        session = requests.Session()
        session.auth = auth
        go.wait()  # every thread wants its first token at the same moment
        statuses = []
        for _ in range(5):
            statuses.append(session.post(f"{api.url}/deployments", json=DEPLOYMENT).status_code)
            statuses.append(session.get(f"{api.url}/deployments").status_code)
        return statuses

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = [status for batch in pool.map(work, range(8)) for status in batch]
    with httpx.Client(auth=credentials.httpx_auth(), timeout=10) as client:
        statuses += [client.get(f"{api.url}/deployments").status_code for _ in range(10)]

    assert statuses == [201, 200] * 40 + [200] * 10
    assert token_requests(server) - before == 1


def test_the_client_refreshes_its_token_before_it_expires(server, clients, api):
    # The "short" client's tokens live 60 s; with a 30 s margin the client renews at 30 s.
    credentials = credentials_for(server, clients["short"], refresh_margin=30)
    session = requests.Session()
    session.auth = credentials.requests_auth()
    before = token_requests(server)
    started = time.monotonic()
    assert session.get(f"{api.url}/deployments").status_code == 200
    first = credentials.token()
    assert session.post(f"{api.url}/deployments", json=DEPLOYMENT).status_code == 201
    assert token_requests(server) - before == 1

    time.sleep(max(0.0, started + 31 - time.monotonic()))
    assert session.get(f"{api.url}/deployments").status_code == 200
    second = credentials.token()
    assert second != first
    assert token_requests(server) - before == 2
    # Renewed early: the first token still had about half its life left.
    assert call(api, "GET", first).status_code == 200


def test_the_example_client_script_deploys_and_lists(server, clients, api):
    client_id, secret = clients["deployer"]
    result = subprocess.run(
        [sys.executable, "examples/deploy_client.py"],
        cwd=ROOT,
        env=child_env(
            TOKEN_URL=f"{server.url}/oauth/token",
            CLIENT_ID=client_id,
            CLIENT_SECRET=secret,
            API_URL=api.url,
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "POST /deployments -> 201" in result.stdout
    assert "GET /deployments -> 200" in result.stdout
    assert secret not in result.stdout


# --- The issuer down -----------------------------------------------------------------------------


def test_cached_keys_keep_working_while_the_jwks_endpoint_is_down(tmp_path):
    # Our server publishes its JWKS with max-age=1 and the API may refetch every second,
    # so within seconds the cached keys are stale and every verification wants a refetch.
    with running_server(tmp_path, extra_env={"OAUTH_JWKS_MAX_AGE": "1"}) as server:
        clients = register_clients(server)
        api = ExampleAPI(server.url, tmp_path, extra_env={"MIN_REFETCH_INTERVAL": "1"}).start()
        try:
            token = server.access_token(*clients["deployer"])
            assert call(api, "GET", token).status_code == 200
            claims = segment_json(token.split(".")[1])

            server.stop()
            time.sleep(2.5)  # past max-age and the refetch interval: the keys are stale now
            for method in ROUTES * 3:
                response = call(api, method, token)
                assert response.status_code in (200, 201), response.text
            assert "JWKS refresh failed, serving cached keys" in api.log_text()

            # A kid the cache cannot serve needs the issuer: 503 and Retry-After, not 401.
            for method in ROUTES:
                response = call(api, method, forged_kid_token(claims))
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"] == "1"
        finally:
            api.stop()


# --- DPoP (RFC 9449): our caller, our server, the example API --------------------------------


@pytest.mark.parametrize("library", ["requests", "httpx"])
def test_our_dpop_caller_gets_a_bound_token_and_the_api_accepts_its_calls(
    server, clients, api, library
):
    """ClientCredentials(dpop=True): a proof at the token endpoint, a DPoP-bound token, and a
    proof with ath on every API call; each proof passes the tests' own RFC 9449 check."""
    credentials = ClientCredentials(server.url + "/oauth/token", *clients["deployer"], dpop=True)
    sent: list[tuple[str, str, dict]] = []
    if library == "requests":
        session = requests.Session()
        session.auth = credentials
        session.hooks["response"].append(
            lambda r, **_: sent.append((r.request.method, r.request.url, dict(r.request.headers)))
        )
        created = session.post(f"{api.url}/deployments", json=DEPLOYMENT, timeout=10)
        listed = session.get(f"{api.url}/deployments", timeout=10)
    else:

        def hook(response: httpx.Response) -> None:
            request = response.request
            sent.append((request.method, str(request.url), dict(request.headers)))

        with httpx.Client(auth=credentials, event_hooks={"response": [hook]}) as client:
            created = client.post(f"{api.url}/deployments", json=DEPLOYMENT)
            listed = client.get(f"{api.url}/deployments")
    assert created.status_code == 201, created.text
    assert listed.status_code == 200, listed.text

    token = credentials.token()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["cnf"] == {"jkt": credentials.dpop_jkt}
    proofs = set()
    for method, url, sent_headers in sent:
        headers = {name.lower(): value for name, value in sent_headers.items()}
        proofs.add(headers["dpop"])
        assert headers["authorization"] == f"DPoP {token}"
        rfc9449_check(
            headers["dpop"], method=method, url=url, access_token=token, jkt=credentials.dpop_jkt
        )
    assert len(proofs) == len(sent) == 2  # a fresh proof per call

    # The same token without the key is worth nothing: as Bearer, and with another key's proof.
    assert call(api, "GET", token).status_code == 401
    url = f"{api.url}/deployments"
    thief = ProofKey.es256().proof("GET", url, access_token=token)
    stolen = requests.get(
        url, headers={"Authorization": f"DPoP {token}", "DPoP": thief}, timeout=10
    )
    assert stolen.status_code == 401
    assert 'error="invalid_dpop_proof"' in stolen.headers["WWW-Authenticate"]


@pytest.fixture(scope="module")
def oauth4webapi(tmp_path_factory) -> Path:
    """oauth4webapi from npm, installed in a directory of this run beside our client script."""
    where = tmp_path_factory.mktemp("oauth4webapi")
    script = where / "client.mjs"
    script.write_text((Path(__file__).parent / "oauth4webapi_dpop.mjs").read_text())
    try:
        installed = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", "oauth4webapi@3"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=180,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"npm is not usable here: {exc}")
    if installed.returncode != 0:
        unreachable = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ENETUNREACH")
        if any(code in installed.stderr for code in unreachable):
            pytest.skip(f"the npm registry is unreachable: {installed.stderr.strip()[-300:]}")
        raise AssertionError(f"npm install failed: {installed.stderr}")
    return script


def test_a_dpop_client_we_did_not_write_gets_a_bound_token_and_our_kit_verifies_its_call(
    server, clients, api, oauth4webapi
):
    """oauth4webapi (Node) finds DPoP in our discovery, gets a DPoP-bound token from our token
    endpoint and calls the example API, whose kit guard verifies its proof."""
    client_id, secret = clients["deployer"]
    ran = subprocess.run(
        ["node", str(oauth4webapi)],
        cwd=oauth4webapi.parent,
        env=child_env(
            ISSUER=server.url,
            CLIENT_ID=client_id,
            CLIENT_SECRET=secret,
            SCOPE="read:deployments",
            API_URL=f"{api.url}/deployments",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    answer = json.loads(ran.stdout.strip().splitlines()[-1])
    assert answer["dpop_algs"] == ["ES256", "RS256", "PS256", "EdDSA"]
    assert answer["token_type"].lower() == "dpop"
    assert answer["api_status"] == 200, answer["api_body"]
    assert answer["api_body"]["client_id"] == client_id
    claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
    assert set(claims["cnf"]) == {"jkt"}
    # Without the library's key, the token it holds is refused.
    assert call(api, "GET", answer["access_token"]).status_code == 401
