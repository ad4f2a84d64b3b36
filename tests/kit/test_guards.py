"""Django and DRF guards: status codes and exact RFC 6750 headers.

RESOURCE_SERVER points at the real tiny server (tests/kit/server.py) through
pytest-django's ``settings`` fixture; views live in tests/kit/urls_guards.py.
"""

import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from m2m_auth_kit.guards import InsufficientScopeError, get_verifier, reset_verifier
from tests.kit.server import AUDIENCE

pytestmark = pytest.mark.urls("tests.kit.urls_guards")

# Both schemes are accepted: the Bearer challenge and the DPoP one (RFC 9449 §7.1) side by side.
DPOP = 'DPoP realm="api", algs="ES256 RS256 PS256 EdDSA"'
BARE = f'Bearer realm="api", {DPOP}'


def invalid_token(description):
    return f'Bearer realm="api", error="invalid_token", error_description="{description}", {DPOP}'


def invalid_request(description):
    return f'Bearer realm="api", error="invalid_request", error_description="{description}", {DPOP}'


@pytest.fixture(autouse=True)
def resource_server(settings, kit):
    # Here as well as in the server's conftest: this module also runs without it, on Django 4.2
    # (tests/kit/guard_settings.py).
    reset_verifier()
    settings.RESOURCE_SERVER = {
        "ISSUER": kit.issuer,
        "AUDIENCE": AUDIENCE,
        "JWKS_URL": None,
        "MIN_REFETCH_INTERVAL": 0.2,
    }
    # The project handler (clients/api/errors.py) is not under test here; DRF's
    # default is the reference behaviour the project handler must match.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "EXCEPTION_HANDLER": "rest_framework.views.exception_handler",
    }
    yield
    reset_verifier()


@pytest.fixture
def client():
    # CSRF checks on: the guarded views must not need a CSRF token.
    return Client(enforce_csrf_checks=True)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


PLAIN = ["/plain/read", "/plain/async", "/plain/items"]
DRF = ["/api/items", "/api/careless"]
ALL = PLAIN + DRF


# --- Accepting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", PLAIN)
def test_a_plain_view_gets_the_claims(client, kit, url):
    response = client.get(url, headers=bearer(kit.mint(scope="read")))

    assert response.status_code == 200
    assert response.json() == {"client_id": "client-1", "scopes": ["read"]}


def test_any_valid_token_passes_when_no_scope_is_required(client, kit):
    response = client.get("/plain/any", headers=bearer(kit.mint(scope="")))

    assert response.status_code == 200


@pytest.mark.parametrize("url", DRF)
def test_a_drf_view_gets_a_token_user_and_claims(client, kit, url):
    response = client.get(url, headers=bearer(kit.mint(scope="read")))

    assert response.status_code == 200
    assert response.json() == {
        "client_id": "client-1",
        "organization_id": "org-1",
        "scopes": ["read"],
        "token_claims": "client-1",
    }


@pytest.mark.parametrize("url", ["/plain/items", "/api/items"])
def test_post_needs_no_csrf_token_and_the_method_scope(client, kit, url):
    response = client.post(url, headers=bearer(kit.mint(scope="write")))

    assert response.status_code == 201


@pytest.mark.parametrize("url", ALL)
def test_the_scheme_is_case_insensitive(client, kit, url):
    response = client.get(url, headers={"Authorization": f"bEaReR {kit.mint()}"})

    assert response.status_code == 200


# --- 401 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ALL)
@pytest.mark.parametrize("authorization", [None, "Basic dXNlcjpwYXNz", "Token abc"])
def test_no_bearer_token_is_401_with_a_bare_challenge(client, url, authorization):
    headers = {"Authorization": authorization} if authorization else {}

    response = client.get(url, headers=headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == BARE


@pytest.mark.parametrize("url", ALL)
def test_a_bad_token_is_401_invalid_token(client, kit, url):
    response = client.get(url, headers=bearer("not-a-jwt"))

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == invalid_token("the token is malformed")


def test_an_authentication_subclass_may_verify_with_its_own_verifier(client, kit):
    allowed = client.get("/api/deny-list", headers=bearer(kit.mint(scope="read")))
    assert allowed.status_code == 200, allowed.content
    denied = client.get(
        "/api/deny-list", headers=bearer(kit.mint(scope="read", client_id="denied-client"))
    )
    assert denied.status_code == 401
    assert denied["WWW-Authenticate"] == invalid_token("the token is revoked")


@pytest.mark.parametrize("url", ALL)
def test_an_expired_token_is_401_invalid_token(client, kit, url):
    token = kit.mint(exp=int(time.time()) - 120)

    response = client.get(url, headers=bearer(token))

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == invalid_token("the token has expired")


@pytest.mark.parametrize("url", ALL)
def test_a_token_for_another_audience_is_401(client, kit, url):
    response = client.get(url, headers=bearer(kit.mint(aud="https://elsewhere.test")))

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == invalid_token("the token is not meant for this audience")


def test_the_plain_401_body_is_json(client, kit):
    response = client.get("/plain/read", headers=bearer("not-a-jwt"))

    assert response.json() == {
        "error": "invalid_token",
        "error_description": "the token is malformed",
    }
    assert client.get("/plain/read").json() == {
        "error": "unauthorized",
        "error_description": "an access token is required",
    }


# --- 400 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ALL)
def test_a_token_in_the_query_string_is_refused(client, kit, url):
    token = kit.mint()

    for headers in ({}, bearer(token)):
        response = client.get(f"{url}?access_token={token}", headers=headers)

        assert response.status_code == 400
        assert response["WWW-Authenticate"] == invalid_request(
            "access tokens are not accepted in the URL"
        )


@pytest.mark.parametrize("url", ALL)
@pytest.mark.parametrize("authorization", ["Bearer", "Bearer ", "Bearer a b", 'Bearer "x"'])
def test_a_malformed_authorization_header_is_400(client, url, authorization):
    response = client.get(url, headers={"Authorization": authorization})

    assert response.status_code == 400
    assert response["WWW-Authenticate"] == invalid_request("the Authorization header is malformed")


# --- 403 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/plain/read", "/plain/async"])
def test_a_missing_scope_is_403_insufficient_scope(client, kit, url):
    response = client.get(url, headers=bearer(kit.mint(scope="write")))

    assert response.status_code == 403
    assert response["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="read"'
    assert response.json() == {
        "error": "insufficient_scope",
        "error_description": "the token lacks a required scope",
        "scope": "read",
    }


@pytest.mark.parametrize("url", ["/plain/items", *DRF])
def test_the_challenge_names_every_scope_the_method_requires(client, kit, url):
    response = client.post(url, headers=bearer(kit.mint(scope="read")))

    assert response.status_code == 403
    assert response["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="write"'


@pytest.mark.parametrize("url", DRF)
def test_drf_lists_all_required_scopes_not_only_the_missing_ones(client, kit, url):
    response = client.delete(url, headers=bearer(kit.mint(scope="write")))

    assert response.status_code == 403
    assert response["WWW-Authenticate"] == (
        'Bearer error="insufficient_scope", scope="admin write"'
    )


@pytest.mark.parametrize("url", ["/plain/items", *DRF])
def test_a_method_missing_from_the_scope_map_is_refused(client, kit, url):
    response = client.put(url, headers=bearer(kit.mint(scope="read write admin")))

    assert response.status_code == 403


def test_insufficient_scope_error_carries_scopes_and_header():
    exc = InsufficientScopeError(["a", "b"], missing=["b"])

    assert exc.status_code == 403
    assert exc.scopes == ("a", "b")
    assert exc.missing == ("b",)
    assert exc.auth_header == 'Bearer error="insufficient_scope", scope="a b"'
    assert exc.get_codes() == "insufficient_scope"


def test_a_drf_view_without_required_scopes_is_a_configuration_error(kit):
    with pytest.raises(ImproperlyConfigured):
        Client(raise_request_exception=True).get("/api/misconfigured", headers=bearer(kit.mint()))


# --- 503 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ALL)
def test_unreachable_keys_are_503_with_retry_after(client, kit, url):
    kit.jwks_failure = "500"

    response = client.get(url, headers=bearer(kit.mint()))

    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert "WWW-Authenticate" not in response


# --- Configuration -------------------------------------------------------------------------------


def test_the_verifier_is_shared_and_rebuilt_when_the_setting_changes(settings, kit):
    first = get_verifier()
    assert get_verifier() is first
    assert first.issuer == kit.issuer and first.audience == AUDIENCE

    settings.RESOURCE_SERVER = {**settings.RESOURCE_SERVER, "AUDIENCE": ["a", "b"]}

    assert get_verifier() is not first
    assert get_verifier().audience == ["a", "b"]


@pytest.mark.parametrize(
    "config",
    [
        None,
        {},
        {"ISSUER": "https://a.test", "AUDIANCE": "typo"},
        {"ISSUER": "https://a.test", "ALGORITHMS": ["HS256"]},
    ],
)
def test_a_bad_setting_is_improperly_configured(settings, config):
    settings.RESOURCE_SERVER = config

    with pytest.raises(ImproperlyConfigured):
        get_verifier()


def test_optional_settings_reach_the_verifier(settings, kit, client):
    settings.RESOURCE_SERVER = {
        "ISSUER": kit.issuer,
        "AUDIENCE": AUDIENCE,
        "JWKS_URL": kit.url("/jwks"),
        "ALGORITHMS": ["RS256", "ES256"],
        "LEEWAY": 0,
        "REQUIRED_TYP": "at+jwt",
    }

    verifier = get_verifier()

    assert verifier.algorithms == ("RS256", "ES256")
    assert verifier.leeway == 0
    response = client.get("/plain/read", headers=bearer(kit.mint(headers={"typ": "JWT"})))
    assert response["WWW-Authenticate"] == invalid_token("the token type is not accepted")
    assert kit.count("/.well-known/oauth-authorization-server") == 0
