"""POST /oauth/revoke: RFC 7009."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from django.core.management import call_command
from django.utils import timezone

from clients.models import AuditEvent
from clients.services import client_key_add
from oauth import keys
from oauth.models import RevokedToken, UsedAssertion
from tests.assertion_helpers import ASSERTION_TYPE, Signer, ec_key, public_jwk
from tests.conftest import SYSTEM, post_form
from tests.oauth.test_introspection import introspect, token_of
from tests.oauth.token.test_endpoint import assert_oauth_error, decode

pytestmark = pytest.mark.django_db


def revoke(client, caller, token: str | None, **extra):
    data = {"client_id": caller.client_id, "client_secret": caller.secret, **extra}
    if token is not None:
        data["token"] = token
    return post_form(client, "/oauth/revoke", data)


def ok(response) -> None:
    assert response.status_code == 200, response.content
    assert response.content == b""
    assert response["Cache-Control"] == "no-store"


def active(client, caller, token: str) -> bool:
    return introspect(client, caller, token).json()["active"]


def world() -> tuple:
    return (
        list(RevokedToken.objects.values_list("jti", "client_id", "expire_time")),
        UsedAssertion.objects.count(),
        AuditEvent.objects.count(),
    )


def test_a_client_revokes_its_own_token(client, guide_client):
    token, unrelated = token_of(client, guide_client), token_of(client, guide_client)
    ok(revoke(client, guide_client, token))
    assert active(client, guide_client, token) is False
    assert active(client, guide_client, unrelated) is True
    claims = jwt.decode(token, options={"verify_signature": False})
    row = RevokedToken.objects.get()
    assert row.jti == claims["jti"] and row.client_id == guide_client.client_id
    assert row.expire_time == datetime.fromtimestamp(claims["exp"], UTC)
    event = AuditEvent.objects.get(action="token.revoke")
    assert event.target_id == claims["jti"] and event.actor_id == guide_client.client_id
    assert event.organization_id == guide_client.client.organization_id


def test_plain_jwks_verification_still_accepts_a_revoked_token(client, guide_client):
    # Documented: only introspection sees revocation; a JWKS-only verifier cannot.
    token = token_of(client, guide_client)
    ok(revoke(client, guide_client, token))
    assert decode(token, client)["client_id"] == guide_client.client_id


def test_basic_authentication_works(client, guide_client):
    token = token_of(client, guide_client)
    ok(
        post_form(
            client, "/oauth/revoke", {"token": token}, HTTP_AUTHORIZATION=guide_client.basic()
        )
    )
    assert active(client, guide_client, token) is False


def test_private_key_jwt_authentication_works(client, guide_client):
    key = ec_key()
    client_key_add(actor=SYSTEM, client=guide_client.client, jwk=public_jwk(key))
    token = token_of(client, guide_client)
    form = {
        "token": token,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": Signer(key, "ES256", None).assertion(guide_client.client_id),
    }
    ok(post_form(client, "/oauth/revoke", form))
    assert active(client, guide_client, token) is False


def test_a_management_client_revokes_any_token(client, guide_client, other_client, management):
    tokens = [token_of(client, guide_client), token_of(client, other_client)]
    for token in tokens:
        ok(revoke(client, management, token))
    assert [active(client, management, t) for t in tokens] == [False, False]
    assert {e.actor_id for e in AuditEvent.objects.filter(action="token.revoke")} == {
        management.client_id
    }


def test_another_clients_token_is_a_silent_no_op(client, guide_client, other_client):
    token = token_of(client, other_client)
    before = world()
    ok(revoke(client, guide_client, token))
    assert world() == before
    assert active(client, other_client, token) is True


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 20000])
def test_unknown_tokens_are_200_and_change_nothing(client, guide_client, token):
    before = world()
    ok(revoke(client, guide_client, token))
    assert world() == before


def test_a_badly_signed_token_is_200_and_changes_nothing(client, guide_client):
    claims = jwt.decode(token_of(client, guide_client), options={"verify_signature": False})
    forged = jwt.encode(claims, ec_key(), algorithm="ES256", headers={"kid": "nope"})
    before = world()
    ok(revoke(client, guide_client, forged))
    assert world() == before


def test_revoking_twice_is_200_and_writes_once(client, guide_client):
    token = token_of(client, guide_client)
    ok(revoke(client, guide_client, token))
    before = world()
    ok(revoke(client, guide_client, token))
    assert world() == before


def test_an_expired_token_needs_no_memory(client, guide_client):
    claims = jwt.decode(token_of(client, guide_client), options={"verify_signature": False})
    expired = keys.current_loaded_key().encode({**claims, "exp": int(time.time()) - 1})
    before = world()
    ok(revoke(client, guide_client, expired))
    assert world() == before


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "unknown_type"])
def test_the_token_type_hint_does_not_change_the_outcome(client, guide_client, hint):
    # RFC 7009 §2.1: the hint only speeds the lookup; we issue access tokens only and always
    # look there, so no hint is "unsupported" (§2.2.1 unsupported_token_type is never due).
    token = token_of(client, guide_client)
    ok(revoke(client, guide_client, token, token_type_hint=hint))
    assert active(client, guide_client, token) is False


def test_revoked_rows_are_forgotten_after_expiry(client, guide_client):
    first, second = token_of(client, guide_client), token_of(client, guide_client)
    ok(revoke(client, guide_client, first))
    RevokedToken.objects.update(expire_time=timezone.now() - timedelta(seconds=1))
    ok(revoke(client, guide_client, second))  # purges the expired row on the way
    second_jti = jwt.decode(second, options={"verify_signature": False})["jti"]
    assert list(RevokedToken.objects.values_list("jti", flat=True)) == [second_jti]
    RevokedToken.objects.update(expire_time=timezone.now() - timedelta(seconds=1))
    out = io.StringIO()
    call_command("purge_expired", stdout=out)
    assert "purged 1 revoked tokens" in out.getvalue()
    assert not RevokedToken.objects.exists()


# --- Errors -------------------------------------------------------------------------------------


def test_a_missing_token_is_invalid_request(client, guide_client):
    before = world()
    assert_oauth_error(revoke(client, guide_client, None), 400, "invalid_request")
    assert_oauth_error(revoke(client, guide_client, ""), 400, "invalid_request")
    assert world() == before


def test_an_unauthenticated_caller_is_invalid_client_and_revokes_nothing(client, guide_client):
    token = token_of(client, guide_client)
    before = world()
    assert_oauth_error(post_form(client, "/oauth/revoke", {"token": token}), 401, "invalid_client")
    wrong = post_form(
        client,
        "/oauth/revoke",
        {"token": token, "client_id": guide_client.client_id, "client_secret": "nope"},
    )
    assert_oauth_error(wrong, 401, "invalid_client")
    only_id = post_form(
        client, "/oauth/revoke", {"token": token, "client_id": guide_client.client_id}
    )
    assert_oauth_error(only_id, 401, "invalid_client")
    assert world() == before
    assert active(client, guide_client, token) is True


def test_basic_and_a_form_secret_together_are_invalid_request(client, guide_client):
    token = token_of(client, guide_client)
    before = world()
    response = post_form(
        client,
        "/oauth/revoke",
        {"token": token, "client_secret": guide_client.secret},
        HTTP_AUTHORIZATION=guide_client.basic(),
    )
    assert_oauth_error(response, 400, "invalid_request")
    assert world() == before


def test_a_wrong_content_type_is_invalid_request(client, guide_client):
    token = token_of(client, guide_client)
    before = world()
    response = client.post(
        "/oauth/revoke",
        {
            "token": token,
            "client_id": guide_client.client_id,
            "client_secret": guide_client.secret,
        },
        content_type="application/json",
    )
    assert_oauth_error(response, 400, "invalid_request")
    assert world() == before


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_other_methods_are_405(client, method):
    response = getattr(client, method)("/oauth/revoke")
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_discovery_publishes_the_revocation_endpoint(client):
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert metadata["revocation_endpoint"] == "http://127.0.0.1:8000/oauth/revoke"
    assert "private_key_jwt" in metadata["revocation_endpoint_auth_methods_supported"]
