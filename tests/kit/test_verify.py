"""TokenVerifier against a real tiny authorization server (tests/kit/server.py)."""

import base64
import hashlib
import hmac
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization

from m2m_auth_kit.verify import (
    Claims,
    ExpiredToken,
    InsufficientScope,
    InvalidToken,
    JWKSUnavailable,
    TokenError,
    TokenVerifier,
)
from tests.kit.server import (
    AUDIENCE,
    RS_CLIENT_ID,
    RS_CLIENT_SECRET,
    SigningKey,
    b64url,
    ec_key,
    rsa_key,
)

JWKS = "/jwks"
DISCOVERY = "/.well-known/oauth-authorization-server"


def forge(header: dict, payload: dict, signature: bytes = b"") -> str:
    """A token with any header and signature, for attacks PyJWT will not sign."""
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(payload).encode())
    return f"{head}.{body}.{b64url(signature)}"


def claims_of(token: str) -> dict:
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


# --- Accepting ------------------------------------------------------------------------------------


def test_it_accepts_a_valid_token(kit, verifier):
    token = kit.mint(scope="read write")

    claims = verifier.verify(token)

    assert isinstance(claims, Claims)
    assert claims.client_id == "client-1"
    assert claims.organization_id == "org-1"
    assert claims.scopes == frozenset({"read", "write"})
    assert claims.audience == [AUDIENCE]
    assert claims.expires_at == datetime.fromtimestamp(claims_of(token)["exp"], tz=UTC)
    assert claims.expires_at.tzinfo is UTC
    assert claims.raw["jti"] == claims_of(token)["jti"]
    assert claims.has_scopes("read") and claims.has_scopes("read", "write")
    assert not claims.has_scopes("read", "admin")
    claims.require_scopes("write")


def test_it_accepts_bytes(kit, verifier):
    assert verifier.verify(kit.mint().encode()).client_id == "client-1"


def test_client_id_falls_back_to_sub_and_scopes_array_wins(kit, verifier):
    claims = verifier.verify(kit.mint(client_id=None, sub="svc-9", scopes=["a", "b"], scope="c"))

    assert claims.client_id == "svc-9"
    assert claims.scopes == frozenset({"a", "b"})


def test_it_accepts_es256_with_a_jwk_without_alg(kit):
    kit.keys = [SigningKey(ec_key(0), "ec-0", "ES256", publish_alg=False)]
    verifier = TokenVerifier(kit.issuer, audience=AUDIENCE, algorithms=["ES256"])

    assert verifier.verify(kit.mint()).client_id == "client-1"


def test_it_accepts_ps256_from_an_rsa_key_without_alg(kit):
    kit.keys = [SigningKey(rsa_key(0), "rsa-ps", "PS256", publish_alg=False)]
    verifier = TokenVerifier(kit.issuer, audience=AUDIENCE, algorithms=["RS256", "PS256"])

    assert verifier.verify(kit.mint()).client_id == "client-1"


def test_it_tolerates_clock_skew_within_leeway(kit, verifier):
    now = int(time.time())

    verifier.verify(kit.mint(exp=now - 10, iat=now - 100))
    verifier.verify(kit.mint(nbf=now + 10))


# --- Refusing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "description"),
    [
        ({"iss": "https://evil.example"}, "the token was issued by an untrusted issuer"),
        ({"iss": None}, "the token is missing a required claim"),
        ({"aud": "https://other.api"}, "the token is not meant for this audience"),
        ({"aud": None}, "the token is missing a required claim"),
        ({"exp": None}, "the token is missing a required claim"),
        ({"nbf": int(time.time()) + 3600}, "the token is not yet valid"),
    ],
)
def test_it_refuses_bad_claims(kit, verifier, overrides, description):
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(kit.mint(**overrides))

    assert caught.value.description == description


def test_an_expired_token_raises_expired_token(kit, verifier):
    with pytest.raises(ExpiredToken) as caught:
        verifier.verify(kit.mint(exp=int(time.time()) - 31))

    assert isinstance(caught.value, InvalidToken)
    assert caught.value.description == "the token has expired"


def test_it_refuses_a_tampered_payload(kit, verifier):
    head, _, signature = kit.mint(scope="read").split(".")
    payload = claims_of(kit.mint(scope="read"))
    payload["scope"] = "read admin"
    tampered = f"{head}.{b64url(json.dumps(payload).encode())}.{signature}"

    with pytest.raises(InvalidToken, match="signature"):
        verifier.verify(tampered)


def test_it_refuses_alg_none(kit, verifier):
    payload = claims_of(kit.mint())

    for alg in ("none", "None", "NONE"):
        with pytest.raises(InvalidToken, match="algorithm is not allowed"):
            verifier.verify(forge({"alg": alg, "kid": "rsa-0", "typ": "JWT"}, payload))
    assert kit.count(JWKS) == 0  # refused before any key was even looked up


def test_it_refuses_hs256_signed_with_the_public_key_pem(kit, verifier):
    # The classic key-confusion attack: the public key, public by design, used as HMAC secret.
    pem = (
        rsa_key(0)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    payload = claims_of(kit.mint())
    head = b64url(json.dumps({"alg": "HS256", "kid": "rsa-0", "typ": "JWT"}).encode())
    body = b64url(json.dumps(payload).encode())
    signature = hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest()

    with pytest.raises(InvalidToken, match="algorithm is not allowed"):
        verifier.verify(f"{head}.{body}.{b64url(signature)}")


def test_it_refuses_hs_algorithms_even_when_asked_to():
    for algorithms in (["HS256"], ["RS256", "HS512"], ["none"], []):
        with pytest.raises(ValueError):
            TokenVerifier("https://issuer.test", algorithms=algorithms)


def test_it_refuses_an_algorithm_outside_the_allowlist(kit, verifier):
    kit.keys = [SigningKey(rsa_key(0), "rsa-0", "RS384")]

    with pytest.raises(InvalidToken, match="algorithm is not allowed"):
        verifier.verify(kit.mint())


def test_it_refuses_a_token_alg_that_differs_from_the_jwk_alg(kit):
    published = SigningKey(rsa_key(0), "rsa-0", "RS256")
    kit.keys = [published]
    verifier = TokenVerifier(kit.issuer, audience=AUDIENCE, algorithms=["RS256", "PS256"])
    same_key_other_alg = SigningKey(rsa_key(0), "rsa-0", "PS256")

    with pytest.raises(InvalidToken, match="does not match its key"):
        verifier.verify(kit.mint(key=same_key_other_alg))


def test_it_refuses_a_key_type_that_does_not_suit_the_alg(kit):
    # An ES256 token pointing at the kid of an RSA key.
    kit.keys = [SigningKey(rsa_key(0), "rsa-0", "RS256", publish_alg=False)]
    verifier = TokenVerifier(kit.issuer, audience=AUDIENCE, algorithms=["RS256", "ES256"])
    impostor = SigningKey(ec_key(0), "rsa-0", "ES256")

    with pytest.raises(InvalidToken, match="does not match its key"):
        verifier.verify(kit.mint(key=impostor))


def test_it_refuses_an_unknown_kid_without_echoing_it(kit, verifier):
    stranger = SigningKey(rsa_key(1), 'evil"kid', "RS256")

    with pytest.raises(InvalidToken) as caught:
        verifier.verify(kit.mint(key=stranger))

    assert caught.value.description == "the token was signed with an unknown key"
    assert "evil" not in str(caught.value)


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "!!.??.**", "x" * 20000])
def test_it_refuses_garbage(verifier, token):
    with pytest.raises(InvalidToken):
        verifier.verify(token)


def test_missing_scopes_raise_insufficient_scope(kit, verifier):
    claims = verifier.verify(kit.mint(scope="read"))

    with pytest.raises(InsufficientScope) as caught:
        claims.require_scopes("read", "write", "admin")

    assert caught.value.missing == ("write", "admin")
    assert caught.value.required == ("read", "write", "admin")
    assert isinstance(caught.value, TokenError)
    assert caught.value.description


# --- Audiences -----------------------------------------------------------------------------------


def test_any_audience_may_match(kit):
    verifier = TokenVerifier(kit.issuer, audience=["https://a.test", AUDIENCE])

    assert verifier.verify(kit.mint(aud=["https://x.test", AUDIENCE])).audience == [
        "https://x.test",
        AUDIENCE,
    ]
    assert verifier.verify(kit.mint(aud="https://a.test")).audience == ["https://a.test"]
    with pytest.raises(InvalidToken, match="audience"):
        verifier.verify(kit.mint(aud=["https://x.test", "https://y.test"]))


def test_without_an_audience_aud_is_not_required(kit):
    verifier = TokenVerifier(kit.issuer)

    assert verifier.verify(kit.mint(aud=None)).audience == []
    assert verifier.verify(kit.mint(aud="https://anything.test")).audience == [
        "https://anything.test"
    ]


# --- typ -----------------------------------------------------------------------------------------


def test_typ_is_compared_case_insensitively_with_or_without_application(kit):
    verifier = TokenVerifier(kit.issuer, audience=AUDIENCE, required_typ="at+jwt")

    verifier.verify(kit.mint(headers={"typ": "at+jwt"}))
    verifier.verify(kit.mint(headers={"typ": "application/AT+JWT"}))
    with pytest.raises(InvalidToken, match="type"):
        verifier.verify(kit.mint(headers={"typ": "JWT"}))
    with pytest.raises(InvalidToken, match="type"):
        verifier.verify(forge({"alg": "RS256", "kid": "rsa-0"}, claims_of(kit.mint())))


# --- Discovery and the JWKS cache ----------------------------------------------------------------


def test_it_discovers_the_jwks_once_and_caches_keys(kit, verifier):
    for _ in range(20):
        verifier.verify(kit.mint())

    assert kit.count(DISCOVERY) == 1
    assert kit.count(JWKS) == 1


def test_a_given_jwks_url_skips_discovery(kit):
    verifier = TokenVerifier(kit.issuer, jwks_url=kit.url(JWKS), audience=AUDIENCE)

    verifier.verify(kit.mint())

    assert kit.count(DISCOVERY) == 0
    assert kit.count(JWKS) == 1


def test_it_refuses_metadata_for_another_issuer(kit, verifier):
    kit.metadata_issuer = "https://impostor.test"

    with pytest.raises(JWKSUnavailable):
        verifier.verify(kit.mint())
    assert kit.count(JWKS) == 0


def test_cold_start_under_concurrency_fetches_once(kit, verifier):
    kit.jwks_delay = 0.2  # keep the first fetch in flight while the others arrive
    token = kit.mint()

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(lambda _: verifier.verify(token).client_id, range(64)))

    assert results == ["client-1"] * 64
    assert kit.count(DISCOVERY) == 1
    assert kit.count(JWKS) == 1


def test_key_rotation_is_picked_up_with_one_refetch(kit, verifier):
    verifier.verify(kit.mint())
    time.sleep(0.25)  # past min_refetch_interval
    kit.rotate()

    claims = verifier.verify(kit.mint())  # signed by the new key

    assert claims.client_id == "client-1"
    assert kit.count(JWKS) == 2
    for _ in range(10):
        verifier.verify(kit.mint())
    assert kit.count(JWKS) == 2


def test_a_rotation_right_after_the_first_fetch_is_picked_up_at_once(kit):
    # The first fetch must not use up the unknown-kid allowance: a key rotated just after an API
    # started would otherwise be refused for a whole interval.
    verifier = TokenVerifier(kit.issuer, audience=AUDIENCE, min_refetch_interval=60)
    verifier.verify(kit.mint())
    kit.rotate()
    assert verifier.verify(kit.mint()).client_id == "client-1"
    assert kit.count(JWKS) == 2
    # The allowance is now used: another unknown kid within the interval fetches nothing.
    kit.rotate()
    with pytest.raises(InvalidToken):
        verifier.verify(kit.mint())
    assert kit.count(JWKS) == 2


def test_a_fresh_verifier_flooded_with_forged_kids_fetches_once(kit):
    verifier = TokenVerifier(kit.issuer, audience=AUDIENCE, min_refetch_interval=60)
    payload = claims_of(kit.mint())
    for i in range(50):
        with pytest.raises(InvalidToken):
            verifier.verify(forge({"alg": "RS256", "kid": f"forged-{i}"}, payload, b"x" * 256))
    assert kit.count(JWKS) == 1
    assert verifier.verify(kit.mint()).client_id == "client-1"  # a real kid is still served
    assert kit.count(JWKS) == 1


def test_a_flood_of_forged_kids_refetches_at_most_once_per_window(kit):
    interval = 1.0
    verifier = TokenVerifier(kit.issuer, audience=AUDIENCE, min_refetch_interval=interval)
    verifier.verify(kit.mint())
    time.sleep(interval + 0.05)  # let the window open, so that the flood may cost one fetch
    payload = claims_of(kit.mint())
    forged = [
        forge({"alg": "RS256", "kid": f"forged-{i}"}, payload, b"x" * 256) for i in range(1000)
    ]
    before = kit.count(JWKS)

    def attempt(token):
        try:
            verifier.verify(token)
        except InvalidToken:
            return "invalid"
        return "accepted"

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(attempt, forged))
    elapsed = time.monotonic() - started

    assert outcomes == ["invalid"] * 1000
    fetches = kit.count(JWKS) - before
    assert 1 <= fetches <= 1 + int(elapsed / interval)
    # Real tokens are unaffected.
    assert verifier.verify(kit.mint()).client_id == "client-1"


def test_cache_control_max_age_sets_the_cache_lifetime(kit):
    kit.jwks_cache_control = "public, max-age=600"
    verifier = TokenVerifier(
        kit.issuer, audience=AUDIENCE, jwks_cache_seconds=0, min_refetch_interval=0.1
    )
    verifier.verify(kit.mint())
    time.sleep(0.2)

    verifier.verify(kit.mint())

    assert kit.count(JWKS) == 1


def test_without_cache_control_keys_expire_after_jwks_cache_seconds(kit):
    verifier = TokenVerifier(
        kit.issuer, audience=AUDIENCE, jwks_cache_seconds=0.1, min_refetch_interval=0.1
    )
    verifier.verify(kit.mint())
    time.sleep(0.2)

    verifier.verify(kit.mint())

    assert kit.count(JWKS) == 2


def test_a_removed_key_stops_working_after_refresh(kit):
    kit.jwks_cache_control = "max-age=0"
    verifier = TokenVerifier(kit.issuer, audience=AUDIENCE, min_refetch_interval=0.1)
    old_token = kit.mint()
    verifier.verify(old_token)
    kit.rotate(keep_old=False)
    time.sleep(0.15)

    with pytest.raises(InvalidToken, match="unknown key"):
        verifier.verify(old_token)


@pytest.mark.parametrize("failure", ["500", "badjson", "reset", "down"])
def test_cached_keys_keep_working_while_the_jwks_is_down(kit, failure):
    kit.jwks_cache_control = "max-age=0"  # stale at once (floored at min_refetch_interval)
    verifier = TokenVerifier(
        kit.issuer, jwks_url=kit.url(JWKS), audience=AUDIENCE, min_refetch_interval=0.1
    )
    verifier.verify(kit.mint())
    token = kit.mint()
    if failure == "down":
        kit.stop()
    else:
        kit.jwks_failure = failure
    time.sleep(0.15)

    assert verifier.verify(token).client_id == "client-1"
    if failure != "down":
        assert kit.count(JWKS) == 2  # it did try, once


@pytest.mark.parametrize("failure", ["500", "badjson", "reset"])
def test_nothing_cached_and_jwks_down_raises_jwks_unavailable(kit, failure):
    # A refetch window no busy machine outlasts within this test: the count must stay at one.
    verifier = TokenVerifier(kit.issuer, audience=AUDIENCE, min_refetch_interval=60)
    kit.jwks_failure = failure

    with pytest.raises(JWKSUnavailable) as caught:
        verifier.verify(kit.mint())

    assert caught.value.retry_after >= 1
    assert kit.count(JWKS) == 1
    # Within the window it does not hammer the broken endpoint.
    for _ in range(20):
        with pytest.raises(JWKSUnavailable):
            verifier.verify(kit.mint())
    assert kit.count(JWKS) == 1


def test_it_recovers_when_the_jwks_comes_back(kit, verifier):
    kit.jwks_failure = "500"
    with pytest.raises(JWKSUnavailable):
        verifier.verify(kit.mint())
    kit.jwks_failure = None
    time.sleep(0.25)

    assert verifier.verify(kit.mint()).client_id == "client-1"


def test_an_unknown_kid_while_the_jwks_is_down_is_unavailable_not_invalid(kit, verifier):
    verifier.verify(kit.mint())
    kit.jwks_failure = "500"
    time.sleep(0.25)

    with pytest.raises(JWKSUnavailable):
        verifier.verify(kit.mint(key=SigningKey(rsa_key(1), "new-kid", "RS256")))


def test_stale_keys_stop_after_the_grace_period(kit):
    kit.jwks_cache_control = "max-age=0"
    verifier = TokenVerifier(kit.issuer, audience=AUDIENCE, min_refetch_interval=0.1)
    verifier.JWKS_STALE_GRACE_SECONDS = 0.0
    verifier.verify(kit.mint())
    kit.jwks_failure = "500"
    time.sleep(0.15)

    with pytest.raises(JWKSUnavailable):
        verifier.verify(kit.mint())


def test_it_skips_unusable_jwks_entries(kit, verifier):
    rsa_jwk = kit.keys[0].jwk()
    kit.extra_jwks = [
        {**rsa_jwk, "kid": "enc-key", "use": "enc"},  # an encryption key
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},  # a shared secret
        {"kty": "RSA", "kid": "broken", "n": "AQAB"},  # no exponent
        "not a jwk",
    ]

    assert verifier.verify(kit.mint()).client_id == "client-1"
    with pytest.raises(InvalidToken, match="unknown key"):
        verifier.verify(kit.mint(key=SigningKey(rsa_key(0), "enc-key", "RS256")))
    with pytest.raises(InvalidToken):
        verifier.verify(forge({"alg": "HS256", "kid": "hmac"}, claims_of(kit.mint())))


# --- Introspection -------------------------------------------------------------------------------


@pytest.fixture
def introspecting(kit):
    return TokenVerifier(
        kit.issuer,
        audience=AUDIENCE,
        introspect=True,
        client_id=RS_CLIENT_ID,
        client_secret=RS_CLIENT_SECRET,
    )


def test_introspection_accepts_an_active_token_and_caches_the_answer(kit, introspecting):
    token = kit.mint()

    for _ in range(5):
        assert introspecting.verify(token).client_id == "client-1"

    assert kit.count("/introspect") == 1
    assert kit.introspection_requests[0]["token"] == token
    # The cache holds a hash, never the bearer token itself.
    assert all(len(key) == 32 for key in introspecting._introspected)
    assert token.encode() not in introspecting._introspected


def test_introspection_refuses_an_inactive_token(kit, introspecting):
    token = kit.mint()
    kit.inactive_tokens.add(token)

    with pytest.raises(InvalidToken) as caught:
        introspecting.verify(token)

    assert caught.value.description == "token is not active"
    with pytest.raises(InvalidToken):
        introspecting.verify(token)
    assert kit.count("/introspect") == 2  # negative answers are not cached


def test_introspection_runs_after_local_verification(kit, introspecting):
    with pytest.raises(InvalidToken):
        introspecting.verify(kit.mint(aud="https://other.test"))

    assert kit.count("/introspect") == 0


def test_introspection_with_bad_credentials_is_unavailable(kit):
    verifier = TokenVerifier(
        kit.issuer,
        audience=AUDIENCE,
        introspect=True,
        introspection_url=kit.url("/introspect"),
        client_id=RS_CLIENT_ID,
        client_secret="wrong",
    )

    with pytest.raises(JWKSUnavailable, match="introspection"):
        verifier.verify(kit.mint())


def test_introspection_needs_credentials():
    with pytest.raises(ValueError):
        TokenVerifier("https://issuer.test", introspect=True)


def test_a_cached_header_never_skips_the_checks(kit, verifier):
    # The same header segment, first on a good token, then on a forged payload.
    good = kit.mint()
    verifier.verify(good)
    head = good.split(".")[0]
    payload = claims_of(good)
    payload["sub"] = payload["client_id"] = str(uuid.uuid4())

    with pytest.raises(InvalidToken, match="signature"):
        verifier.verify(f"{head}.{b64url(json.dumps(payload).encode())}.{good.split('.')[2]}")
