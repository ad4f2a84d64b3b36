"""The kit's resource side of DPoP (RFC 9449 §7): ``TokenVerifier.verify_dpop``, the replay
cache, and the Django and DRF guards with their §7.1 challenges. Proofs are made by the tests'
own client (tests/dpop_proofs.py), written from the RFC, not by the kit."""

from __future__ import annotations

import threading
import time

import pytest
from django.test import Client

from m2m_auth_kit.dpop import InvalidDPoPProof, MemoryReplayCache, normalize_uri
from m2m_auth_kit.verify import InvalidToken, TokenVerifier
from tests.dpop_proofs import ProofKey
from tests.kit.server import AUDIENCE
from tests.kit.test_guards import BARE, DPOP

pytestmark = pytest.mark.urls("tests.kit.urls_guards")

URI = "https://api.example.com/orders"
PLAIN = ["/plain/read", "/plain/async", "/plain/items"]
DRF = ["/api/items", "/api/careless"]
ALL = PLAIN + DRF
DPOP_ONLY = ["/plain/dpop-only", "/plain/dpop-only-items", "/api/dpop-only"]


@pytest.fixture(scope="module")
def key() -> ProofKey:
    return ProofKey.es256()


def bound(kit, key: ProofKey, **claims) -> str:
    return kit.mint(cnf={"jkt": key.jkt}, **claims)


# --- TokenVerifier.verify_dpop ---------------------------------------------------------------


def test_a_bound_token_with_its_proof_verifies(verifier, kit, key):
    token = bound(kit, key)
    claims = verifier.verify_dpop(
        token, key.proof("GET", URI, access_token=token), method="GET", uri=URI
    )
    assert claims.jkt == key.jkt and claims.client_id == "client-1"


def test_the_uri_is_compared_without_query_and_after_normalisation(verifier, kit, key):
    token = bound(kit, key)
    proof = key.proof("GET", "HTTPS://API.example.com:443/orders", access_token=token)
    verifier.verify_dpop(token, proof, method="GET", uri=URI + "?page=2#top")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"htm": "POST"}, "htm"),
        ({"htu": "https://api.example.com/other"}, "htu"),
        # Seconds from now, made when the test runs (not at collection, minutes earlier).
        ({"iat": -120}, "iat"),
        ({"iat": +120}, "iat"),
        ({"ath": "wrong"}, "ath"),
    ],
)
def test_a_proof_for_another_request_or_time_or_token_is_refused(
    verifier, kit, key, change, message
):
    token = bound(kit, key)
    if "iat" in change:
        change = {"iat": int(time.time()) + change["iat"]}
    proof = key.proof("GET", URI, access_token=token, claims=change)
    with pytest.raises(InvalidDPoPProof, match=message):
        verifier.verify_dpop(token, proof, method="GET", uri=URI)


def test_a_proof_without_ath_is_refused(verifier, kit, key):
    token = bound(kit, key)
    with pytest.raises(InvalidDPoPProof, match="ath"):
        verifier.verify_dpop(token, key.proof("GET", URI), method="GET", uri=URI)


def test_a_key_that_is_not_the_tokens_is_refused(verifier, kit, key):
    token = bound(kit, key)
    thief = ProofKey.es256()
    proof = thief.proof("GET", URI, access_token=token)
    with pytest.raises(InvalidDPoPProof, match="not the one the access token is bound to"):
        verifier.verify_dpop(token, proof, method="GET", uri=URI)


def test_a_replayed_proof_is_refused(verifier, kit, key):
    token = bound(kit, key)
    proof = key.proof("GET", URI, access_token=token)
    verifier.verify_dpop(token, proof, method="GET", uri=URI)
    with pytest.raises(InvalidDPoPProof, match="replayed"):
        verifier.verify_dpop(token, proof, method="GET", uri=URI)


def test_the_replay_cache_is_pluggable(kit, key):
    class Shared:
        def __init__(self):
            self.keys = set()

        def remember(self, key, ttl):
            if key in self.keys:
                return False
            self.keys.add(key)
            return True

    shared = Shared()
    one, two = (
        TokenVerifier(kit.issuer, audience=AUDIENCE, dpop_replay_cache=shared) for _ in range(2)
    )
    token = bound(kit, key)
    proof = key.proof("GET", URI, access_token=token)
    one.verify_dpop(token, proof, method="GET", uri=URI)
    with pytest.raises(InvalidDPoPProof, match="replayed"):
        two.verify_dpop(token, proof, method="GET", uri=URI)


def test_a_bound_token_as_bearer_and_a_bearer_token_as_dpop_are_refused(verifier, kit, key):
    with pytest.raises(InvalidToken, match="DPoP-bound"):
        verifier.verify(bound(kit, key))
    token = kit.mint()
    with pytest.raises(InvalidToken, match="not DPoP-bound"):
        verifier.verify_dpop(
            token, key.proof("GET", URI, access_token=token), method="GET", uri=URI
        )


def test_a_verifier_that_requires_dpop_refuses_every_bearer_token(kit):
    verifier = TokenVerifier(kit.issuer, audience=AUDIENCE, dpop_required=True)
    with pytest.raises(InvalidToken, match="DPoP-bound tokens only"):
        verifier.verify(kit.mint())


def test_the_memory_cache_forgets_expired_keys_and_refuses_when_full(monkeypatch):
    cache = MemoryReplayCache(max_entries=2)
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now)
    assert cache.remember("a", 10) and cache.remember("b", 10)
    assert not cache.remember("a", 10)
    assert not cache.remember("c", 10)  # full of live keys: refused, never a replay let through
    monkeypatch.setattr(time, "monotonic", lambda: now + 11)
    assert cache.remember("a", 10) and cache.remember("c", 10)


def test_the_memory_cache_lets_one_of_many_threads_through():
    cache = MemoryReplayCache()
    answers = []
    threads = [
        threading.Thread(target=lambda: answers.append(cache.remember("k", 60))) for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [False] * 15 + [True]


@pytest.mark.parametrize(
    ("uri", "normal"),
    [
        ("HTTPS://Example.COM:443/a/./b/../c", "https://example.com/a/c"),
        ("http://example.com", "http://example.com/"),
        ("http://example.com:8080/%7euser/%2f", "http://example.com:8080/~user/%2F"),
        ("http://[::1]:80/x?q#f", "http://[::1]/x"),
        ("ftp://example.com/", None),
        ("/relative", None),
        ("http://user@example.com/", None),
        ("http://example.com:99999/", None),
    ],
)
def test_uris_are_normalised_per_rfc3986(uri, normal):
    assert normalize_uri(uri) == normal


# --- Guards ---------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def resource_server(settings, kit):
    settings.RESOURCE_SERVER = {"ISSUER": kit.issuer, "AUDIENCE": AUDIENCE}
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "EXCEPTION_HANDLER": "rest_framework.views.exception_handler",
    }


@pytest.fixture
def client():
    return Client(enforce_csrf_checks=True)


def dpop_headers(token: str, proof: str | None) -> dict[str, str]:
    headers = {"Authorization": f"DPoP {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return headers


def call(client, method: str, url: str, key: ProofKey, token: str, **proof_options):
    proof = key.proof(
        method.upper(), f"http://testserver{url}", access_token=token, **proof_options
    )
    return getattr(client, method)(url, headers=dpop_headers(token, proof))


@pytest.mark.parametrize("url", ALL)
def test_every_guard_accepts_a_bound_token_with_its_proof(client, kit, key, url):
    response = call(client, "get", url, key, bound(kit, key, scope="read"))
    assert response.status_code == 200, response.content
    assert response.json()["client_id"] == "client-1"


@pytest.mark.parametrize("url", ["/plain/items", "/api/items"])
def test_the_proof_names_the_method(client, kit, key, url):
    token = bound(kit, key, scope="write")
    assert call(client, "post", url, key, token).status_code == 201
    proof = key.proof("GET", f"http://testserver{url}", access_token=token)
    response = client.post(url, headers=dpop_headers(token, proof))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith('DPoP realm="api", error="invalid_dpop_proof"')


def proof_error(description: str) -> str:
    return (
        f'DPoP realm="api", error="invalid_dpop_proof", error_description="{description}", '
        f'algs="ES256 RS256 PS256 EdDSA", Bearer realm="api"'
    )


@pytest.mark.parametrize("url", ALL)
def test_a_missing_or_replayed_proof_is_401_invalid_dpop_proof(client, kit, key, url):
    token = bound(kit, key, scope="read")
    response = client.get(url, headers=dpop_headers(token, None))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == proof_error("a DPoP proof is required")
    if url.startswith("/plain"):  # (DRF's bodies are its exception handler's business)
        assert response.json()["error"] == "invalid_dpop_proof"
    proof = key.proof("GET", f"http://testserver{url}", access_token=token)
    assert client.get(url, headers=dpop_headers(token, proof)).status_code == 200
    replayed = client.get(url, headers=dpop_headers(token, proof))
    assert replayed["WWW-Authenticate"] == proof_error(
        "the DPoP proof was used already (jti replayed)"
    )


@pytest.mark.parametrize("url", ALL)
def test_a_stolen_bound_token_is_useless(client, kit, key, url):
    token = bound(kit, key, scope="read")
    as_bearer = client.get(url, headers={"Authorization": f"Bearer {token}"})
    assert as_bearer.status_code == 401
    assert 'error="invalid_token"' in as_bearer["WWW-Authenticate"]
    assert (
        as_bearer["WWW-Authenticate"].startswith("Bearer") and DPOP in as_bearer["WWW-Authenticate"]
    )
    thief = ProofKey.es256()
    response = call(client, "get", url, thief, token)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == proof_error(
        "the DPoP proof's key is not the one the access token is bound to"
    )


@pytest.mark.parametrize("url", ["/plain/read", "/api/items"])
def test_a_dpop_token_lacking_a_scope_gets_a_dpop_insufficient_scope(client, kit, key, url):
    response = call(client, "get", url, key, bound(kit, key, scope="other"))
    assert response.status_code == 403
    assert response["WWW-Authenticate"] == 'DPoP error="insufficient_scope", scope="read"'


@pytest.mark.parametrize("url", ALL)
def test_without_a_token_both_challenges_are_offered(client, url):
    response = client.get(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == BARE


@pytest.mark.parametrize("url", DPOP_ONLY)
def test_an_api_that_requires_dpop_refuses_bearer_tokens_and_says_so(client, kit, key, url):
    assert client.get(url)["WWW-Authenticate"] == DPOP
    response = client.get(url, headers={"Authorization": f"Bearer {kit.mint()}"})
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == (
        'DPoP realm="api", error="invalid_token", '
        'error_description="this API accepts DPoP-bound tokens only", '
        'algs="ES256 RS256 PS256 EdDSA"'
    )
    assert call(client, "get", url, key, bound(kit, key, scope="read")).status_code == 200


def test_the_setting_makes_dpop_required_everywhere(client, kit, key, settings):
    settings.RESOURCE_SERVER = {**settings.RESOURCE_SERVER, "DPOP_REQUIRED": True}
    for url in ALL:
        response = client.get(url, headers={"Authorization": f"Bearer {kit.mint()}"})
        assert response.status_code == 401 and response["WWW-Authenticate"].startswith("DPoP")


def test_a_replay_cache_can_be_named_in_the_setting(kit, settings):
    settings.RESOURCE_SERVER = {
        **settings.RESOURCE_SERVER,
        "DPOP_REPLAY_CACHE": "m2m_auth_kit.dpop.MemoryReplayCache",
    }
    from m2m_auth_kit.django import get_verifier

    assert isinstance(get_verifier().dpop_replay_cache, MemoryReplayCache)
