"""private_key_jwt at the token endpoint (RFC 7523 §2.2, §3; RFC 7521 §4.2)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import time
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management import call_command
from django.utils import timezone

from clients.services import client_create, client_delete, client_key_add, client_key_delete
from oauth.assertions import NO_KEY_VERIFIES
from oauth.models import UsedAssertion
from tests.assertion_helpers import (
    ASSERTION_TYPE,
    ISSUER,
    TOKEN_URL,
    Signer,
    assertion_form,
    ec_key,
    public_jwk,
    rsa_key,
)
from tests.conftest import SYSTEM, post_form
from tests.oauth.token.test_endpoint import assert_oauth_error, decode

pytestmark = pytest.mark.django_db


def token_with(client, assertion: str, **extra):
    return post_form(client, "/oauth/token", assertion_form(assertion, **extra))


def used() -> list:
    return list(UsedAssertion.objects.order_by("id").values_list("client_id", "jti"))


def assert_refused(client, assertion: str, **extra) -> dict:
    before = used()
    body = assert_oauth_error(token_with(client, assertion, **extra), 401, "invalid_client")
    assert used() == before  # a refused assertion leaves no trace
    return body


def test_it_issues_a_token_for_an_rs256_assertion(client, guide_client, rs256):
    response = token_with(client, rs256.assertion(guide_client.client_id))
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "deploy:applications read:deployments"
    claims = decode(body["access_token"], client)
    assert claims["sub"] == claims["client_id"] == guide_client.client_id
    assert claims["oid"] == guide_client.client.organization_id
    assert claims["github_repository"] == "acmecorp/inventory-service"


@pytest.mark.parametrize(
    ("make", "alg"),
    [
        (lambda: ec_key(), "ES256"),
        (lambda: ec_key(ec.SECP384R1()), "ES384"),
        (lambda: rsa_key(1), "PS256"),
        (lambda: rsa_key(2), "RS384"),
        (lambda: rsa_key(3), "RS512"),
    ],
)
def test_every_supported_algorithm_works(client, guide_client, make, alg):
    key = make()
    jwk = public_jwk(key, alg=alg) if alg.startswith(("RS", "PS")) else public_jwk(key)
    client_key_add(actor=SYSTEM, client=guide_client.client, jwk=jwk)
    # No kid in the header: the server tries each of the client's keys for that algorithm.
    signer = Signer(key, alg, None)
    response = token_with(client, signer.assertion(guide_client.client_id))
    assert response.status_code == 200, response.content


def test_client_id_in_the_form_is_optional_but_must_match(
    client, guide_client, other_client, es256
):
    cid = guide_client.client_id
    assert token_with(client, es256.assertion(cid), client_id=cid).status_code == 200
    body = assert_refused(client, es256.assertion(cid), client_id=other_client.client_id)
    assert "client_id" in body["error_description"]


@pytest.mark.parametrize(
    "aud", [ISSUER, TOKEN_URL, [TOKEN_URL, "https://elsewhere.example"], [ISSUER]]
)
def test_the_audience_may_be_the_issuer_or_the_token_endpoint(client, guide_client, es256, aud):
    assert token_with(client, es256.assertion(guide_client.client_id, aud=aud)).status_code == 200


def test_scope_and_audience_requests_work_as_with_secrets(client, guide_client, es256):
    response = token_with(client, es256.assertion(guide_client.client_id), scope="read:deployments")
    assert response.json()["scope"] == "read:deployments"
    assert_oauth_error(
        token_with(client, es256.assertion(guide_client.client_id), scope="admin"),
        400,
        "invalid_scope",
    )


def test_a_replayed_assertion_is_refused(client, guide_client, es256):
    assertion = es256.assertion(guide_client.client_id)
    assert token_with(client, assertion).status_code == 200
    body = assert_refused(client, assertion)
    assert "replayed" in body["error_description"]
    # A fresh jti works again.
    assert token_with(client, es256.assertion(guide_client.client_id)).status_code == 200


def test_the_same_jti_from_another_client_is_not_a_replay(client, guide_client, other_client):
    key = ec_key()
    for creds in (guide_client, other_client):
        client_key_add(actor=SYSTEM, client=creds.client, jwk=public_jwk(key, kid="k"))
    signer = Signer(key, "ES256", "k")
    assert (
        token_with(client, signer.assertion(guide_client.client_id, jti="same")).status_code == 200
    )
    assert (
        token_with(client, signer.assertion(other_client.client_id, jti="same")).status_code == 200
    )


def test_the_jti_is_remembered_until_the_assertion_expires(client, guide_client, es256):
    token_with(client, es256.assertion(guide_client.client_id, lifetime=120, jti="j1"))
    row = UsedAssertion.objects.get(jti="j1")
    expected = timezone.now() + timedelta(seconds=120 + 30)
    assert abs((row.expire_time - expected).total_seconds()) < 5
    assert row.client_id == guide_client.client_id


def test_expired_jtis_are_purged_by_the_next_assertion_and_by_the_command(
    client, guide_client, es256
):
    token_with(client, es256.assertion(guide_client.client_id, jti="old"))
    UsedAssertion.objects.update(expire_time=timezone.now() - timedelta(seconds=1))
    token_with(client, es256.assertion(guide_client.client_id, jti="new"))
    assert list(UsedAssertion.objects.values_list("jti", flat=True)) == ["new"]
    UsedAssertion.objects.update(expire_time=timezone.now() - timedelta(seconds=1))
    out = io.StringIO()
    call_command("purge_expired", stdout=out)
    assert "1 used assertions" in out.getvalue()
    assert not UsedAssertion.objects.exists()


def test_an_assertion_signed_by_an_unregistered_key_is_refused(client, guide_client, es256):
    stranger = Signer(ec_key(), "ES256", "ec-1")  # claims the registered kid
    body = assert_refused(client, stranger.assertion(guide_client.client_id))
    assert body["error_description"] == NO_KEY_VERIFIES
    anonymous = Signer(ec_key(), "ES256", None)  # no kid: every key is tried, none verifies
    assert_refused(client, anonymous.assertion(guide_client.client_id))


def test_an_unknown_kid_is_refused(client, guide_client, es256):
    assert_refused(client, es256.assertion(guide_client.client_id, kid="nope"))
    # A kid that is not a string: the header is rebuilt by hand (PyJWT refuses to write it).
    _, payload, signature = es256.assertion(guide_client.client_id).split(".")
    header = base64.urlsafe_b64encode(b'{"alg":"ES256","kid":7}').rstrip(b"=").decode()
    assert_refused(client, f"{header}.{payload}.{signature}")


def test_a_deleted_key_stops_working_at_once(client, guide_client, es256):
    assert token_with(client, es256.assertion(guide_client.client_id)).status_code == 200
    key = guide_client.client.keys.get()
    client_key_delete(actor=SYSTEM, key=key)
    assert_refused(client, es256.assertion(guide_client.client_id))


def test_a_client_without_keys_or_a_deleted_client_is_refused(client, guide_client, other_client):
    signer = Signer(ec_key(), "ES256", None)
    assert_refused(client, signer.assertion(other_client.client_id))
    client_key_add(actor=SYSTEM, client=other_client.client, jwk=public_jwk(signer.private_key))
    assert token_with(client, signer.assertion(other_client.client_id)).status_code == 200
    client_delete(actor=SYSTEM, client=other_client.client)
    assert_refused(client, signer.assertion(other_client.client_id))
    assert_refused(client, signer.assertion("m2morg_00000000000000000"))


def test_every_failure_before_a_signature_holds_gives_the_same_answer(
    client, guide_client, other_client, es256
):
    """Unknown client, client without keys, no matching key, bad signature: one answer, so the
    token endpoint does not tell whether a client_id exists."""
    stranger = Signer(ec_key(), "ES256", None)
    deleted, _ = client_create(
        actor=SYSTEM, organization=guide_client.client.organization, name="x"
    )
    client_delete(actor=SYSTEM, client=deleted)
    attempts = {
        "unknown client": stranger.assertion("m2morg_00000000000000000"),
        "deleted client": stranger.assertion(deleted.id),
        "client without keys": stranger.assertion(other_client.client_id),
        "unknown kid": es256.assertion(guide_client.client_id, kid="nope"),
        "another alg than the key's": Signer(rsa_key(), "RS256", "ec-1").assertion(
            guide_client.client_id
        ),
        "bad signature, registered kid": Signer(ec_key(), "ES256", "ec-1").assertion(
            guide_client.client_id
        ),
        "bad signature, no kid": stranger.assertion(guide_client.client_id),
    }
    answers = {}
    for name, assertion in attempts.items():
        response = token_with(client, assertion)
        answers[name] = (response.status_code, response.content, response.get("WWW-Authenticate"))
    assert len(set(answers.values())) == 1, answers
    status, body, _challenge = answers["unknown client"]
    assert status == 401
    assert json.loads(body) == {"error": "invalid_client", "error_description": NO_KEY_VERIFIES}


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"aud": "https://someone-else.example/token"}, "aud"),
        ({"aud": f"{ISSUER}/oauth/introspect/x"}, "aud"),
        ({"aud": None}, "aud"),
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"exp": None}, "exp"),
        ({"exp": "soon"}, ""),
        ({"lifetime": 86400}, "too long"),
        ({"jti": None}, "jti"),
        ({"jti": 42}, "jti"),
        ({"jti": "j" * 256}, "jti"),
        ({"nbf": int(time.time()) + 600}, "not valid yet"),
        ({"iat": int(time.time()) + 600}, "not valid yet"),
        ({"sub": "someone-else"}, "sub"),
        ({"sub": None}, "sub"),
    ],
    ids=lambda value: str(sorted(value)) if isinstance(value, dict) else value,
)
def test_bad_claims_are_invalid_client(client, guide_client, es256, overrides, words):
    assertion = es256.assertion(guide_client.client_id, **overrides)
    body = assert_refused(client, assertion)
    assert words in body["error_description"]


def test_iss_must_be_the_client(client, guide_client, other_client, es256):
    # Signed by guide_client's key, but naming another client: no key of that client verifies.
    other = other_client.client_id
    assert_refused(client, es256.assertion(guide_client.client_id, iss=other, sub=other))
    assert_refused(client, es256.assertion(guide_client.client_id, iss=other))
    assert_refused(client, es256.assertion(guide_client.client_id, iss=None))


# No client_id or jti of ours holds a NUL, and PostgreSQL text cannot hold one: such an iss or jti
# is refused before it reaches a query.
def test_an_assertion_whose_iss_has_a_nul_is_invalid_client(client, guide_client, es256):
    nul_id = "m2morg_1\x00"
    assertion = es256.assertion(guide_client.client_id, iss=nul_id, sub=nul_id)
    assert_oauth_error(token_with(client, assertion), 401, "invalid_client")


def test_an_assertion_whose_jti_has_a_nul_is_invalid_client(client, guide_client, es256):
    assertion = es256.assertion(guide_client.client_id, jti="j\x00")
    body = assert_oauth_error(token_with(client, assertion), 401, "invalid_client")
    assert "jti" in body["error_description"]
    assert not UsedAssertion.objects.exists()


def test_an_algorithm_other_than_the_keys_is_refused(client, guide_client, rs256):
    # PS256 with a key registered for RS256: the key is bound to its algorithm.
    assert_refused(client, rs256.assertion(guide_client.client_id, alg="PS256"))


def test_none_and_hmac_assertions_are_refused(client, guide_client, rs256):
    now = int(time.time())
    claims = {
        "iss": guide_client.client_id,
        "sub": guide_client.client_id,
        "aud": TOKEN_URL,
        "exp": now + 60,
        "jti": "x",
    }
    unsigned = jwt.encode(claims, None, algorithm="none")
    body = assert_refused(client, unsigned)
    assert "alg" in body["error_description"]
    # The public key (PEM) as an HMAC secret: the classic algorithm confusion, signed for real.
    pem = rs256.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
    header = b64(json.dumps({"alg": "HS256", "kid": "rsa-1"}).encode())
    signing_input = f"{header}.{b64(json.dumps(claims).encode())}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{b64(mac)}"
    assert_refused(client, forged)


@pytest.mark.parametrize(
    "assertion", ["", "not-a-jwt", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30", "x" * 20000]
)
def test_malformed_assertions_are_invalid_client(client, guide_client, assertion):
    response = post_form(
        client,
        "/oauth/token",
        {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )
    # An empty assertion is a malformed request; anything else fails authentication.
    if assertion:
        assert_oauth_error(response, 401, "invalid_client")
    else:
        assert_oauth_error(response, 400, "invalid_request")
    assert not UsedAssertion.objects.exists()


def test_a_wrong_assertion_type_is_invalid_client(client, guide_client, es256):
    form = assertion_form(es256.assertion(guide_client.client_id))
    form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"
    assert_oauth_error(post_form(client, "/oauth/token", form), 401, "invalid_client")
    assert not UsedAssertion.objects.exists()


def test_one_assertion_parameter_without_the_other_is_invalid_request(client, guide_client, es256):
    assertion = es256.assertion(guide_client.client_id)
    for form in (
        {"grant_type": "client_credentials", "client_assertion": assertion},
        {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE},
    ):
        assert_oauth_error(post_form(client, "/oauth/token", form), 400, "invalid_request")
    assert not UsedAssertion.objects.exists()


def test_an_assertion_with_a_secret_is_invalid_request(client, guide_client, es256):
    assertion = es256.assertion(guide_client.client_id)
    response = token_with(client, assertion, client_secret=guide_client.secret)
    assert_oauth_error(response, 400, "invalid_request")
    response = post_form(
        client,
        "/oauth/token",
        assertion_form(assertion),
        HTTP_AUTHORIZATION=guide_client.basic(),
    )
    assert_oauth_error(response, 400, "invalid_request")
    assert not UsedAssertion.objects.exists()
    # The assertion was not consumed by the refused requests.
    assert token_with(client, assertion).status_code == 200


def test_a_repeated_assertion_parameter_is_invalid_request(client, guide_client, es256):
    assertion = es256.assertion(guide_client.client_id)
    form = [*assertion_form(assertion).items(), ("client_assertion", assertion)]
    assert_oauth_error(post_form(client, "/oauth/token", form), 400, "invalid_request")
    assert not UsedAssertion.objects.exists()


def test_discovery_lists_private_key_jwt(client):
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]
    algs = metadata["token_endpoint_auth_signing_alg_values_supported"]
    assert set(algs) == {"RS256", "RS384", "RS512", "PS256", "ES256", "ES384"}
    assert "none" not in algs and not any(a.startswith("HS") for a in algs)
