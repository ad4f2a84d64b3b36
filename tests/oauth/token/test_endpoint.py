"""POST /oauth/token: RFC 6749 §4.4, with every error of §5.2."""

from __future__ import annotations

import base64
import io
import json
import time
from datetime import timedelta

import jwt
import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clients.models import ClientSecret
from clients.services import client_delete, secret_add, secret_delete, secret_set_status
from oauth import keys
from oauth.token.endpoint import token_endpoint
from tests.conftest import SYSTEM, Credentials, post_form, request_token
from tests.serving.helpers import PausableProxy

pytestmark = pytest.mark.django_db


def public_key_for(token: str, client) -> object:
    kid = jwt.get_unverified_header(token)["kid"]
    body = client.get("/.well-known/jwks.json").json()
    jwk = next(k for k in body["keys"] if k["kid"] == kid)
    return jwt.PyJWK(jwk).key


def decode(token: str, client, audience: str | list | None = None) -> dict:
    return jwt.decode(
        token,
        public_key_for(token, client),
        algorithms=["RS256", "ES256"],
        audience=audience or "deployment-api.acmecorp.com",
        issuer="http://127.0.0.1:8000",
    )


def assert_oauth_error(response, status: int, error: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["error"] == error
    assert isinstance(body["error_description"], str) and body["error_description"]
    return body


def test_it_issues_a_token_with_client_secret_post(client, guide_client):
    response = request_token(client, guide_client)
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "deploy:applications read:deployments"
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "RS256" and header["typ"] == "at+jwt" and header["kid"]
    claims = decode(body["access_token"], client)
    assert claims["sub"] == claims["client_id"] == guide_client.client_id
    assert claims["oid"] == guide_client.client.organization_id
    assert claims["scopes"] == ["deploy:applications", "read:deployments"]
    assert claims["scope"] == "deploy:applications read:deployments"
    assert claims["aud"] == "deployment-api.acmecorp.com"
    assert claims["exp"] == claims["iat"] + 3600
    assert claims["nbf"] == claims["iat"]
    assert abs(claims["iat"] - time.time()) < 5
    assert claims["jti"].startswith("tkn_")
    assert claims["github_repository"] == "acmecorp/inventory-service"
    assert claims["environment"] == "production_us"


def test_it_issues_a_token_with_client_secret_basic(client, guide_client):
    response = post_form(
        client,
        "/oauth/token",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=guide_client.basic(),
    )
    assert response.status_code == 200, response.content
    decode(response.json()["access_token"], client)


def test_basic_credentials_are_form_urlencoded_before_base64(client, org, settings):
    # A prefix with characters that form-urlencoding changes proves the server decodes them.
    settings.OAUTH = {**settings.OAUTH, "SECRET_PREFIX": "t+st:%_"}
    from clients.services import client_create

    created, secret = client_create(actor=SYSTEM, organization=org, name="odd")
    creds = Credentials(created, secret)
    response = post_form(
        client,
        "/oauth/token",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=creds.basic(),
    )
    assert response.status_code == 200, response.content


def test_jti_is_unique_per_token(client, guide_client):
    jtis = {
        decode(request_token(client, guide_client).json()["access_token"], client)["jti"]
        for _ in range(5)
    }
    assert len(jtis) == 5


def test_scope_narrows_the_token(client, guide_client):
    response = request_token(client, guide_client, scope="read:deployments")
    assert response.status_code == 200
    assert response.json()["scope"] == "read:deployments"
    claims = decode(response.json()["access_token"], client)
    assert claims["scopes"] == ["read:deployments"]
    assert claims["scope"] == "read:deployments"


def test_an_unregistered_scope_is_invalid_scope(client, guide_client):
    response = request_token(client, guide_client, scope="read:deployments admin")
    assert_oauth_error(response, 400, "invalid_scope")


def test_audience_and_resource_narrow_the_token(client, org):
    from clients.services import client_create

    created, secret = client_create(
        actor=SYSTEM, organization=org, name="two apis", audience=["api-a", "api-b"]
    )
    creds = Credentials(created, secret)
    for name in ("audience", "resource"):
        response = request_token(client, creds, **{name: "api-b"})
        assert response.status_code == 200, response.content
        assert decode(response.json()["access_token"], client, audience="api-b")["aud"] == "api-b"
    both = decode(request_token(client, creds).json()["access_token"], client, audience="api-a")
    assert both["aud"] == ["api-a", "api-b"]


def test_an_unregistered_audience_is_invalid_target(client, guide_client):
    assert_oauth_error(
        request_token(client, guide_client, audience="evil.example"), 400, "invalid_target"
    )
    assert_oauth_error(
        request_token(client, guide_client, resource="https://evil.example"), 400, "invalid_target"
    )


def test_a_client_without_audience_gets_no_aud_claim(client, other_client):
    token = request_token(client, other_client).json()["access_token"]
    claims = jwt.decode(token, public_key_for(token, client), algorithms=["RS256"])
    assert "aud" not in claims


@pytest.mark.parametrize(
    "form",
    [
        {"client_secret": "wrong"},
        {"client_id": "m2morg_00000000000000000"},
        {"client_id": ""},
        {"client_secret": ""},
    ],
)
def test_bad_credentials_are_invalid_client(client, guide_client, form):
    response = request_token(client, guide_client, **form)
    body = assert_oauth_error(response, 401, "invalid_client")
    assert "Basic" in response["WWW-Authenticate"]
    assert (
        body["error_description"] == "client authentication failed"
        or form.get("client_id") == ""
        or form.get("client_secret") == ""
    )


# No client_id of ours holds a NUL, and PostgreSQL text cannot hold one: a query comparing with it
# would fail (a 503, and on PostgreSQL a whole failed batch), so it is refused before any query.
NUL_ID = "m2morg_1\x00"


def test_a_client_id_with_a_nul_in_the_form_is_invalid_client(client, guide_client):
    response = request_token(client, guide_client, client_id=NUL_ID)
    assert_oauth_error(response, 401, "invalid_client")


def test_a_client_id_with_a_nul_in_basic_credentials_is_invalid_client(client, guide_client):
    basic = base64.b64encode(f"{NUL_ID}:{guide_client.secret}".encode()).decode()
    response = post_form(
        client,
        "/oauth/token",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )
    assert_oauth_error(response, 401, "invalid_client")


def test_the_same_client_still_gets_its_token_afterwards(client, guide_client):
    request_token(client, guide_client, client_id=NUL_ID)
    assert request_token(client, guide_client).status_code == 200


def test_unknown_client_and_wrong_secret_answer_the_same(client, guide_client):
    wrong = request_token(client, guide_client, client_secret="test_nope").json()
    unknown = request_token(client, guide_client, client_id="m2morg_12345678901234567").json()
    assert wrong == unknown


def test_wrong_basic_secret_is_401_with_www_authenticate(client, guide_client):
    bad = Credentials(guide_client.client, "wrong")
    response = post_form(
        client, "/oauth/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=bad.basic()
    )
    assert_oauth_error(response, 401, "invalid_client")
    assert response["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    "header", ["Basic !!!notbase64", "Basic " + base64.b64encode(b"nocolon").decode(), "Bearer abc"]
)
def test_malformed_authorization_is_invalid_client(client, guide_client, header):
    response = post_form(
        client, "/oauth/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=header
    )
    assert_oauth_error(response, 401, "invalid_client")


def test_basic_and_form_secret_together_is_invalid_request(client, guide_client):
    response = post_form(
        client,
        "/oauth/token",
        {"grant_type": "client_credentials", "client_secret": guide_client.secret},
        HTTP_AUTHORIZATION=guide_client.basic(),
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_no_credentials_is_invalid_client(client, db):
    response = post_form(client, "/oauth/token", {"grant_type": "client_credentials"})
    assert_oauth_error(response, 401, "invalid_client")


def test_missing_grant_type_is_invalid_request(client, guide_client):
    response = post_form(
        client,
        "/oauth/token",
        {"client_id": guide_client.client_id, "client_secret": guide_client.secret},
    )
    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "grant", ["password", "authorization_code", "refresh_token", "CLIENT_CREDENTIALS"]
)
def test_other_grants_are_unsupported_grant_type(client, guide_client, grant):
    assert_oauth_error(
        request_token(client, guide_client, grant_type=grant), 400, "unsupported_grant_type"
    )


def test_a_repeated_parameter_is_invalid_request(client, guide_client):
    data = [
        ("grant_type", "client_credentials"),
        ("client_id", guide_client.client_id),
        ("client_secret", guide_client.secret),
        ("scope", "read:deployments"),
        ("scope", "deploy:applications"),
    ]
    assert_oauth_error(post_form(client, "/oauth/token", data), 400, "invalid_request")


def test_json_body_is_invalid_request(client, guide_client):
    response = client.post(
        "/oauth/token",
        json.dumps(
            {
                "grant_type": "client_credentials",
                "client_id": guide_client.client_id,
                "client_secret": guide_client.secret,
            }
        ),
        content_type="application/json",
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_an_oversized_body_is_413(client, guide_client):
    response = request_token(client, guide_client, padding="x" * (1024 * 1024 + 10))
    assert_oauth_error(response, 413, "invalid_request")


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_other_methods_are_405(client, db, method):
    response = getattr(client, method)("/oauth/token")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["error"] == "invalid_request"


def test_a_deleted_secret_is_refused_at_once(client, guide_client):
    assert request_token(client, guide_client).status_code == 200  # now cached as verified
    secret = ClientSecret.objects.get(client=guide_client.client)
    secret_delete(actor=SYSTEM, secret=secret)
    assert_oauth_error(request_token(client, guide_client), 401, "invalid_client")


def test_an_inactive_secret_is_refused_at_once(client, guide_client):
    assert request_token(client, guide_client).status_code == 200
    secret = ClientSecret.objects.get(client=guide_client.client)
    secret_set_status(actor=SYSTEM, secret=secret, status="INACTIVE")
    assert_oauth_error(request_token(client, guide_client), 401, "invalid_client")
    secret_set_status(actor=SYSTEM, secret=secret, status="ACTIVE")
    assert request_token(client, guide_client).status_code == 200


def test_a_deleted_client_is_refused_at_once(client, guide_client):
    assert request_token(client, guide_client).status_code == 200
    client_delete(actor=SYSTEM, client=guide_client.client)
    assert_oauth_error(request_token(client, guide_client), 401, "invalid_client")


def test_an_expired_secret_is_refused(client, guide_client):
    secret, plain = secret_add(
        actor=SYSTEM, client=guide_client.client, expire_time=timezone.now() + timedelta(seconds=60)
    )
    creds = Credentials(guide_client.client, plain)
    assert request_token(client, creds).status_code == 200
    ClientSecret.objects.filter(pk=secret.pk).update(
        expire_time=timezone.now() - timedelta(seconds=1)
    )
    assert_oauth_error(request_token(client, creds), 401, "invalid_client")
    assert request_token(client, guide_client).status_code == 200


def test_rotation_without_downtime(client, guide_client):
    old = ClientSecret.objects.get(client=guide_client.client)
    _, new_plain = secret_add(actor=SYSTEM, client=guide_client.client)
    new = Credentials(guide_client.client, new_plain)
    assert request_token(client, guide_client).status_code == 200
    assert request_token(client, new).status_code == 200
    secret_delete(actor=SYSTEM, secret=old)
    assert request_token(client, guide_client).status_code == 401
    assert request_token(client, new).status_code == 200


def test_one_query_per_warm_request_and_no_write(client, guide_client):
    assert request_token(client, guide_client).status_code == 200  # warm: verified, touched
    with CaptureQueriesContext(connection) as queries:
        assert request_token(client, guide_client).status_code == 200
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 1, statements
    assert statements[0].lstrip().upper().startswith("SELECT")


def test_last_used_time_is_kept_to_the_minute(client, guide_client):
    secret = ClientSecret.objects.get(client=guide_client.client)
    assert secret.last_used_time is None
    request_token(client, guide_client)
    secret.refresh_from_db()
    first = secret.last_used_time
    assert first is not None and timezone.now() - first < timedelta(seconds=5)
    request_token(client, guide_client)
    secret.refresh_from_db()
    assert secret.last_used_time == first  # not rewritten within the minute
    ClientSecret.objects.filter(pk=secret.pk).update(
        last_used_time=timezone.now() - timedelta(minutes=2)
    )
    request_token(client, guide_client)
    secret.refresh_from_db()
    assert timezone.now() - secret.last_used_time < timedelta(seconds=5)


def test_a_management_client_gets_a_management_token(client, management, settings):
    response = request_token(client, management)
    assert response.status_code == 200
    token = response.json()["access_token"]
    claims = jwt.decode(
        token,
        public_key_for(token, client),
        algorithms=["RS256"],
        audience=settings.OAUTH["MANAGEMENT_AUDIENCE"],
        issuer=settings.OAUTH["ISSUER"],
    )
    assert claims["scopes"] == ["management"]
    assert "oid" not in claims


def test_tokens_follow_a_key_rotation(client, guide_client):
    first = request_token(client, guide_client).json()["access_token"]
    keys.rotate_signing_key()
    second = request_token(client, guide_client).json()["access_token"]
    assert jwt.get_unverified_header(first)["kid"] != jwt.get_unverified_header(second)["kid"]
    decode(first, client)  # the retired key is still published
    decode(second, client)


def test_es256_tokens_verify_through_the_jwks(client, guide_client, settings):
    keys.rotate_signing_key(algorithm="ES256")
    token = request_token(client, guide_client).json()["access_token"]
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    decode(token, client)
    jwk = next(
        k
        for k in client.get("/keys").json()["keys"]
        if k["kid"] == jwt.get_unverified_header(token)["kid"]
    )
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256" and jwk["alg"] == "ES256"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the timeout bounds PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_database_that_stops_answering_is_a_503_on_the_synchronous_path(guide_client, settings):
    """Django's own connection (the Django view, any WSGI server, the pool's fallback) goes
    through a proxy that then drops every byte: the token query gives up after
    OAUTH_TOKEN_DATABASE_TIMEOUT and the endpoint answers 503 with Retry-After."""
    settings.OAUTH = {**settings.OAUTH, "TOKEN_DATABASE_TIMEOUT": 1}
    original = connections["default"]
    proxy = PausableProxy(
        (original.settings_dict["HOST"] or "127.0.0.1", int(original.settings_dict["PORT"] or 5432))
    )
    proxied = original.__class__(
        {**original.settings_dict, "HOST": "127.0.0.1", "PORT": str(proxy.port)}, alias="default"
    )
    connections["default"] = proxied
    body = (
        f"grant_type=client_credentials&client_id={guide_client.client_id}"
        f"&client_secret={guide_client.secret}"
    ).encode()

    def token() -> tuple[int, dict, bytes]:
        return token_endpoint(
            "POST", "application/x-www-form-urlencoded", len(body), None, io.BytesIO(body).read, {}
        )

    try:
        assert token()[0] == 200
        proxy.stall()
        status, headers, answer = token()
        proxy.resume()
        proxied.close_if_unusable_or_obsolete()  # what the end of a request does
        assert token()[0] == 200  # on a new connection
    finally:
        connections["default"] = original
        proxied.close()
        proxy.pause()
    assert status == 503
    assert int(headers["Retry-After"]) > 0
    assert json.loads(answer) == {
        "error": "temporarily_unavailable",
        "error_description": "try again shortly",
    }
