"""POST /oauth/introspect: RFC 7662."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest
from django.utils import timezone

from clients.models import AuditEvent, ClientSecret
from clients.services import client_delete, client_key_add, secret_delete
from oauth import keys
from oauth.models import RevokedToken, SigningKey, UsedAssertion
from oauth.token.lookup import AuthenticatedClient
from oauth.token.signing import issue_token
from tests.assertion_helpers import (
    ASSERTION_TYPE,
    ISSUER,
    Signer,
    ec_key,
    public_jwk,
    rsa_key,
)
from tests.conftest import SYSTEM, post_form, request_token
from tests.oauth.token.test_endpoint import assert_oauth_error

pytestmark = pytest.mark.django_db


def token_of(client, creds) -> str:
    response = request_token(client, creds)
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def introspect(client, caller, token: str | None, **extra):
    data = {"client_id": caller.client_id, "client_secret": caller.secret, **extra}
    if token is not None:
        data["token"] = token
    return post_form(client, "/oauth/introspect", data)


def answer(response) -> dict:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"
    return response.json()


def world() -> tuple:
    return (
        RevokedToken.objects.count(),
        UsedAssertion.objects.count(),
        AuditEvent.objects.count(),
        list(ClientSecret.objects.values_list("id", "status")),
    )


def test_a_client_introspects_its_own_live_token(client, guide_client):
    token = token_of(client, guide_client)
    claims = jwt.decode(token, options={"verify_signature": False})
    body = answer(introspect(client, guide_client, token))
    assert body == {
        "active": True,
        "scope": "deploy:applications read:deployments",
        "client_id": guide_client.client_id,
        "sub": guide_client.client_id,
        "aud": "deployment-api.acmecorp.com",
        "iss": ISSUER,
        "exp": claims["exp"],
        "iat": claims["iat"],
        "nbf": claims["nbf"],
        "jti": claims["jti"],
        "token_type": "Bearer",
        "oid": guide_client.client.organization_id,
    }


def test_basic_authentication_works(client, guide_client):
    token = token_of(client, guide_client)
    response = post_form(
        client, "/oauth/introspect", {"token": token}, HTTP_AUTHORIZATION=guide_client.basic()
    )
    assert answer(response)["active"] is True


def test_private_key_jwt_authentication_works(client, guide_client):
    key = ec_key()
    client_key_add(actor=SYSTEM, client=guide_client.client, jwk=public_jwk(key, kid="k"))
    token = token_of(client, guide_client)
    assertion = Signer(key, "ES256", "k").assertion(guide_client.client_id)
    form = {
        "token": token,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    assert answer(post_form(client, "/oauth/introspect", form))["active"] is True
    # The same assertion a second time is a replay.
    assert_oauth_error(post_form(client, "/oauth/introspect", form), 401, "invalid_client")


def test_a_management_client_introspects_any_token(client, guide_client, other_client, management):
    for creds in (guide_client, other_client):
        body = answer(introspect(client, management, token_of(client, creds)))
        assert body["active"] is True and body["client_id"] == creds.client_id
    own = answer(introspect(client, management, token_of(client, management)))
    assert own["active"] is True and "oid" not in own


def test_a_client_cannot_introspect_another_clients_token(client, guide_client, other_client):
    token = token_of(client, other_client)
    assert answer(introspect(client, guide_client, token)) == {"active": False}
    # Same organization makes no difference: only the client's own tokens.
    from clients.services import client_create

    sibling, secret = client_create(
        actor=SYSTEM, organization=guide_client.client.organization, name="sibling"
    )
    from tests.conftest import Credentials

    assert (
        answer(introspect(client, Credentials(sibling, secret), token_of(client, guide_client)))[
            "active"
        ]
        is False
    )


def test_an_expired_token_is_inactive(client, guide_client):
    row = guide_client.client
    short = AuthenticatedClient(row.id, row.organization_id, [], [], [], 60, None)
    token = issue_token(short).access_token
    assert answer(introspect(client, guide_client, token))["active"] is True
    # Past the default leeway of 5 s (OAUTH_TOKEN_LEEWAY_SECONDS).
    expired = keys.current_loaded_key().encode(
        {**jwt.decode(token, options={"verify_signature": False}), "exp": int(time.time()) - 30}
    )
    assert answer(introspect(client, guide_client, expired)) == {"active": False}


def test_the_leeway_past_exp_is_the_setting(client, guide_client, settings):
    settings.OAUTH = {**settings.OAUTH, "TOKEN_LEEWAY_SECONDS": 120}
    row = guide_client.client
    token = issue_token(AuthenticatedClient(row.id, row.organization_id, [], [], [], 60, None))
    expired = keys.current_loaded_key().encode(
        {
            **jwt.decode(token.access_token, options={"verify_signature": False}),
            "exp": int(time.time()) - 30,
        }
    )
    assert answer(introspect(client, guide_client, expired))["active"] is True


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    return f"{header}.{flipped}.{signature}"


@pytest.mark.parametrize(
    "make",
    [
        lambda t: "garbage",
        lambda t: "a.b.c",
        lambda t: t + "x",
        lambda t: _tampered(t),
        lambda t: t.rsplit(".", 1)[0] + ".",
        lambda t: "x" * 20000,
    ],
    ids=["garbage", "abc", "suffix", "tampered", "unsigned", "huge"],
)
def test_garbage_and_badly_signed_tokens_are_inactive(client, guide_client, make):
    token = token_of(client, guide_client)
    assert answer(introspect(client, guide_client, make(token))) == {"active": False}


def test_a_token_signed_by_a_foreign_key_with_our_kid_is_inactive(client, guide_client):
    token = token_of(client, guide_client)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(claims, rsa_key(), algorithm="RS256", headers={"kid": header["kid"]})
    assert answer(introspect(client, guide_client, forged)) == {"active": False}
    hmac = jwt.encode(claims, "s" * 32, algorithm="HS256", headers={"kid": header["kid"]})
    assert answer(introspect(client, guide_client, hmac)) == {"active": False}
    none = jwt.encode(claims, None, algorithm="none", headers={"kid": header["kid"]})
    assert answer(introspect(client, guide_client, none)) == {"active": False}


def test_introspecting_a_token_whose_kid_has_a_nul_says_inactive(client, guide_client):
    # No kid of ours holds a NUL, which PostgreSQL text cannot hold: no key is looked up for it.
    key = keys.current_loaded_key()
    token = jwt.encode(
        {"iss": "x", "sub": "x", "client_id": "x", "jti": "x", "exp": 9999999999, "iat": 1},
        key.private_key,
        algorithm=key.algorithm,
        headers={"kid": "k\x00"},
    )
    assert answer(introspect(client, guide_client, token)) == {"active": False}


def test_a_token_with_another_issuer_is_inactive(client, guide_client):
    claims = jwt.decode(token_of(client, guide_client), options={"verify_signature": False})
    other = keys.current_loaded_key().encode({**claims, "iss": "https://evil.example"})
    assert answer(introspect(client, guide_client, other)) == {"active": False}


def test_a_revoked_token_is_inactive_at_once_and_an_unrelated_one_stays_active(
    client, guide_client
):
    revoked, unrelated = token_of(client, guide_client), token_of(client, guide_client)
    response = post_form(
        client,
        "/oauth/revoke",
        {
            "token": revoked,
            "client_id": guide_client.client_id,
            "client_secret": guide_client.secret,
        },
    )
    assert response.status_code == 200
    assert answer(introspect(client, guide_client, revoked)) == {"active": False}
    assert answer(introspect(client, guide_client, unrelated))["active"] is True


def test_a_token_of_a_deleted_client_is_inactive(client, guide_client, management):
    token = token_of(client, guide_client)
    client_delete(actor=SYSTEM, client=guide_client.client)
    assert answer(introspect(client, management, token)) == {"active": False}


def test_deleting_a_secret_does_not_deactivate_its_tokens(client, guide_client, management):
    # Documented: tokens do not record the secret that obtained them; revoke them instead.
    token = token_of(client, guide_client)
    secret_delete(actor=SYSTEM, secret=ClientSecret.objects.get(client=guide_client.client))
    assert answer(introspect(client, management, token))["active"] is True


def test_tokens_of_a_retired_key_stay_active_until_it_is_unpublished(
    client, guide_client, management
):
    old = token_of(client, guide_client)
    keys.rotate_signing_key(algorithm="ES256")
    new = token_of(client, guide_client)
    assert jwt.get_unverified_header(new)["alg"] == "ES256"
    assert answer(introspect(client, management, old))["active"] is True
    assert answer(introspect(client, management, new))["active"] is True
    SigningKey.objects.filter(retire_time__isnull=False).update(unpublish_time=timezone.now())
    assert answer(introspect(client, management, old)) == {"active": False}


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "something_else"])
def test_the_token_type_hint_is_only_a_hint(client, guide_client, hint):
    token = token_of(client, guide_client)
    body = answer(introspect(client, guide_client, token, token_type_hint=hint))
    assert body["active"] is True


def test_a_token_without_scopes_or_audience_omits_them(client, guide_client):
    row = guide_client.client
    bare = issue_token(AuthenticatedClient(row.id, row.organization_id, [], [], [], 600, None))
    body = answer(introspect(client, guide_client, bare.access_token))
    assert body["active"] is True and "scope" not in body and "aud" not in body


# --- Errors -------------------------------------------------------------------------------------


def test_a_missing_token_is_invalid_request(client, guide_client):
    before = world()
    assert_oauth_error(introspect(client, guide_client, None), 400, "invalid_request")
    assert_oauth_error(introspect(client, guide_client, ""), 400, "invalid_request")
    assert world() == before


def test_an_unauthenticated_caller_is_invalid_client(client, guide_client):
    token = token_of(client, guide_client)
    before = world()
    response = post_form(client, "/oauth/introspect", {"token": token})
    body = assert_oauth_error(response, 401, "invalid_client")
    assert response["WWW-Authenticate"].startswith("Basic")
    assert body["error_description"]
    wrong = post_form(
        client,
        "/oauth/introspect",
        {"token": token, "client_id": guide_client.client_id, "client_secret": "wrong"},
    )
    assert_oauth_error(wrong, 401, "invalid_client")
    bearer = post_form(
        client, "/oauth/introspect", {"token": token}, HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert_oauth_error(bearer, 401, "invalid_client")
    assert world() == before


def test_an_expired_caller_secret_is_invalid_client(client, guide_client):
    token = token_of(client, guide_client)
    ClientSecret.objects.update(expire_time=timezone.now() - timedelta(seconds=1))
    assert_oauth_error(introspect(client, guide_client, token), 401, "invalid_client")


def test_a_wrong_content_type_or_a_repeated_parameter_is_invalid_request(client, guide_client):
    token = token_of(client, guide_client)
    before = world()
    response = client.post(
        "/oauth/introspect",
        {"token": token, "client_id": guide_client.client_id},
        content_type="application/json",
    )
    assert_oauth_error(response, 400, "invalid_request")
    repeated = post_form(
        client,
        "/oauth/introspect",
        [
            ("token", token),
            ("token", token),
            ("client_id", guide_client.client_id),
            ("client_secret", guide_client.secret),
        ],
    )
    assert_oauth_error(repeated, 400, "invalid_request")
    assert world() == before


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_other_methods_are_405(client, method):
    response = getattr(client, method)("/oauth/introspect")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["error"] == "invalid_request"


def test_discovery_publishes_the_introspection_endpoint(client):
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert metadata["introspection_endpoint"] == f"{ISSUER}/oauth/introspect"
    assert metadata["introspection_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ]
