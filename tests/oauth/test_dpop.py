"""DPoP at the token endpoint (RFC 9449 §5, §8): proofs checked, tokens bound, every refusal."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
import redis

from clients.models import ApiClient
from oauth.models import UsedAssertion
from tests.conftest import post_form, request_token
from tests.dpop_proofs import ProofKey, b64url, unsigned_proof
from tests.oauth.token.test_endpoint import assert_oauth_error, decode

pytestmark = pytest.mark.django_db

HTU = "http://testserver/oauth/token"
ADVERTISED = "http://127.0.0.1:8000/oauth/token"
# A Redis database of our own (the rate-limit tests use 0, health 15, e2e 13 and 14).
REDIS_URL = "redis://127.0.0.1:6379/11"


@pytest.fixture(scope="module")
def key() -> ProofKey:
    return ProofKey.es256()


def token_with(client, creds, proof: str | None, **form):
    extra = {} if proof is None else {"HTTP_DPOP": proof}
    data = {
        "grant_type": "client_credentials",
        "client_id": creds.client_id,
        "client_secret": creds.secret,
        **form,
    }
    return post_form(client, "/oauth/token", data, **extra)


def refused(response, description_part: str, error: str = "invalid_dpop_proof") -> None:
    body = assert_oauth_error(response, 400, error)
    assert description_part in body["error_description"]


@pytest.mark.parametrize("make", [ProofKey.es256, ProofKey.eddsa, ProofKey.rsa, "PS256"])
def test_it_binds_the_token_to_the_proofs_key(client, guide_client, make):
    proof_key = ProofKey.rsa("PS256") if make == "PS256" else make()
    response = token_with(client, guide_client, proof_key.proof("POST", HTU))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "DPoP"
    claims = decode(body["access_token"], client)
    assert claims["cnf"] == {"jkt": proof_key.jkt}
    assert "DPoP-Nonce" not in response


def test_without_a_proof_the_token_is_a_bearer_token_as_before(client, guide_client):
    body = request_token(client, guide_client).json()
    assert body["token_type"] == "Bearer"
    assert "cnf" not in decode(body["access_token"], client)


def test_the_advertised_url_and_rfc3986_equivalents_are_accepted(client, guide_client, key):
    for htu in (
        ADVERTISED,
        "HTTP://TestServer:80/oauth/./token",
        "http://testserver/oauth/%74oken",
    ):
        response = token_with(client, guide_client, key.proof("POST", htu))
        assert response.status_code == 200, (htu, response.content)


def test_a_private_key_in_the_header_is_refused(client, guide_client, key):
    proof = key.proof("POST", HTU, header={"jwk": key.private_jwk})
    refused(token_with(client, guide_client, proof), "public key, not a private one")


@pytest.mark.parametrize(
    ("htm", "htu"),
    [
        ("GET", HTU),
        ("post", HTU),
        ("POST", "http://testserver/oauth/introspect"),
        ("POST", "https://testserver/oauth/token"),
        ("POST", "http://elsewhere.example/oauth/token"),
    ],
)
def test_the_wrong_method_or_uri_is_refused(client, guide_client, key, htm, htu):
    refused(token_with(client, guide_client, key.proof(htm, htu)), "does not match the request")


@pytest.mark.parametrize("offset", [-61, -3600, 30, 3600])
def test_an_old_or_future_iat_is_refused(client, guide_client, key, offset):
    proof = key.proof("POST", HTU, iat=time.time() + offset)
    refused(token_with(client, guide_client, proof), "iat is too old or in the future")


def oauth_setting(settings, **values) -> None:
    settings.OAUTH = {**settings.OAUTH, **values}


def test_the_iat_window_is_a_setting(client, guide_client, key, settings):
    oauth_setting(settings, DPOP_IAT_WINDOW=600)
    proof = key.proof("POST", HTU, iat=time.time() - 300)
    assert token_with(client, guide_client, proof).status_code == 200


def test_a_replayed_proof_is_refused(client, guide_client, key):
    proof = key.proof("POST", HTU)
    assert token_with(client, guide_client, proof).status_code == 200
    refused(token_with(client, guide_client, proof), "jti replayed")
    # Remembered in the shared store (the database here), not in this process.
    assert UsedAssertion.objects.filter(client_id="dpop").count() == 1


def test_the_same_jti_from_another_key_is_not_a_replay(client, guide_client, key):
    assert token_with(client, guide_client, key.proof("POST", HTU, jti="same")).status_code == 200
    other = ProofKey.es256()
    assert token_with(client, guide_client, other.proof("POST", HTU, jti="same")).status_code == 200


def test_a_refused_request_does_not_use_up_the_jti(client, guide_client, key):
    proof = key.proof("POST", HTU)
    response = token_with(client, guide_client, proof, scope="not:granted")
    assert_oauth_error(response, 400, "invalid_scope")
    assert token_with(client, guide_client, proof).status_code == 200


def test_alg_none_and_hmac_are_refused(client, guide_client, key):
    claims = {"jti": "j1", "htm": "POST", "htu": HTU, "iat": int(time.time())}
    none = unsigned_proof({"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk}, claims)
    refused(token_with(client, guide_client, none), "alg must be one of")
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": b64url(b"k" * 32)}}
    mac = unsigned_proof(header, claims)
    head, body, _ = mac.split(".")
    signature = hmac.new(b"k" * 32, f"{head}.{body}".encode(), hashlib.sha256).digest()
    refused(token_with(client, guide_client, f"{head}.{body}.{b64url(signature)}"), "alg must be")


@pytest.mark.parametrize(
    ("proof", "part"),
    [
        ("", "a DPoP proof is required"),
        ("not-a-jwt", "not a well-formed JWT"),
        ("a.b.c", "not a well-formed JWT"),
    ],
)
def test_malformed_proofs_are_refused(client, guide_client, proof, part):
    refused(token_with(client, guide_client, proof), part)


def test_a_wrong_typ_a_foreign_signature_and_missing_claims_are_refused(client, guide_client, key):
    refused(token_with(client, guide_client, key.proof("POST", HTU, header={"typ": "JWT"})), "typ")
    other = ProofKey.es256()
    forged = key.proof("POST", HTU, header={"jwk": other.public_jwk})
    refused(token_with(client, guide_client, forged), "signature does not verify")
    no_jti = key.proof("POST", HTU, claims={"jti": ""})
    refused(token_with(client, guide_client, no_jti), "jti")
    string_iat = key.proof("POST", HTU, claims={"iat": "now"})
    refused(token_with(client, guide_client, string_iat), "numeric iat")


def test_a_dpop_bound_client_without_a_proof_is_refused(client, guide_client, key):
    ApiClient.objects.filter(pk=guide_client.client_id).update(dpop_bound_access_tokens=True)
    response = request_token(client, guide_client)
    body = assert_oauth_error(response, 400, "invalid_dpop_proof")
    assert "DPoP-bound" in body["error_description"]
    assert token_with(client, guide_client, key.proof("POST", HTU)).json()["token_type"] == "DPoP"


def test_a_proof_does_not_excuse_bad_client_credentials(client, guide_client, key):
    guide_client.secret = "wrong"
    response = token_with(client, guide_client, key.proof("POST", HTU))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_the_nonce_flow(client, guide_client, key, settings):
    oauth_setting(settings, DPOP_NONCE_REQUIRED=True)
    first = token_with(client, guide_client, key.proof("POST", HTU))
    refused(first, "nonce", error="use_dpop_nonce")
    nonce = first["DPoP-Nonce"]
    assert nonce
    wrong = token_with(client, guide_client, key.proof("POST", HTU, nonce="not-ours"))
    refused(wrong, "nonce", error="use_dpop_nonce")
    second = token_with(client, guide_client, key.proof("POST", HTU, nonce=nonce))
    assert second.status_code == 200, second.content
    assert second["DPoP-Nonce"]
    assert second.json()["token_type"] == "DPoP"


def test_a_nonce_lives_until_the_end_of_the_next_slot(
    client, guide_client, key, monkeypatch, settings
):
    oauth_setting(settings, DPOP_NONCE_REQUIRED=True, DPOP_NONCE_SECONDS=30)
    nonce = token_with(client, guide_client, key.proof("POST", HTU))["DPoP-Nonce"]
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 30)
    proof = key.proof("POST", HTU, nonce=nonce, iat=now + 30)
    assert token_with(client, guide_client, proof).status_code == 200
    monkeypatch.setattr(time, "time", lambda: now + 61)
    proof = key.proof("POST", HTU, nonce=nonce, iat=now + 61)
    refused(token_with(client, guide_client, proof), "nonce", error="use_dpop_nonce")


def test_introspection_reports_the_binding(client, guide_client, key):
    token = token_with(client, guide_client, key.proof("POST", HTU)).json()["access_token"]
    answer = post_form(
        client,
        "/oauth/introspect",
        {"token": token, "client_id": guide_client.client_id, "client_secret": guide_client.secret},
    ).json()
    assert answer["active"] is True
    assert answer["token_type"] == "DPoP"
    assert answer["cnf"] == {"jkt": key.jkt}


def test_discovery_lists_the_proof_algorithms(client):
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert metadata["dpop_signing_alg_values_supported"] == ["ES256", "RS256", "PS256", "EdDSA"]


def test_private_key_jwt_clients_get_bound_tokens_too(client, guide_client, es256, key):
    response = post_form(
        client,
        "/oauth/token",
        {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": es256.assertion(guide_client.client_id),
        },
        HTTP_DPOP=key.proof("POST", HTU),
    )
    assert response.status_code == 200, response.content
    assert decode(response.json()["access_token"], client)["cnf"] == {"jkt": key.jkt}


@pytest.fixture
def redis_store(settings):
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    settings.REDIS_URL = REDIS_URL
    yield
    settings.REDIS_URL = None


def test_with_redis_the_replay_store_is_redis(client, guide_client, key, redis_store):
    proof = key.proof("POST", HTU)
    assert token_with(client, guide_client, proof).status_code == 200
    refused(token_with(client, guide_client, proof), "jti replayed")
    assert not UsedAssertion.objects.exists()


def test_an_unreachable_redis_fails_closed(client, guide_client, key, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = token_with(client, guide_client, key.proof("POST", HTU))
    assert_oauth_error(response, 503, "temporarily_unavailable")
