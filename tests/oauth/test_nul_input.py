"""A NUL character in what names a client, a key, an assertion or a page is bad input, answered
as such.

PostgreSQL text cannot hold a NUL, so a query comparing with one fails ("PostgreSQL text fields
cannot contain NUL"). On PostgreSQL the token requests were answered 503 (on the batched path the
failure also sent every request of its batch to the slow path and reconnected), and the pages
500. No client_id, kid or jti of ours contains one. The suite runs on PostgreSQL in CI, where these
tests were red.
"""

from __future__ import annotations

import base64

import jwt
import pytest

from clients.models import Membership
from oauth import keys
from oauth.models import UsedAssertion
from oauth.token.request import credentials_of
from tests.conftest import logged_in, make_user, post_form, request_token
from tests.oauth.test_assertions import token_with
from tests.oauth.test_introspection import answer, introspect
from tests.oauth.token.test_endpoint import assert_oauth_error

pytestmark = pytest.mark.django_db

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


def test_the_batch_is_not_asked_for_a_client_id_with_a_nul():
    assert credentials_of(None, b"client_id=m2morg_1%00&client_secret=s") is None
    assert credentials_of(None, b"client_id=m2morg_1&client_secret=s") == ("m2morg_1", "s")


def test_the_same_client_still_gets_its_token_afterwards(client, guide_client):
    request_token(client, guide_client, client_id=NUL_ID)
    assert request_token(client, guide_client).status_code == 200


def test_an_assertion_whose_iss_has_a_nul_is_invalid_client(client, guide_client, es256):
    assertion = es256.assertion(guide_client.client_id, iss=NUL_ID, sub=NUL_ID)
    assert_oauth_error(token_with(client, assertion), 401, "invalid_client")


def test_an_assertion_whose_jti_has_a_nul_is_invalid_client(client, guide_client, es256):
    assertion = es256.assertion(guide_client.client_id, jti="j\x00")
    body = assert_oauth_error(token_with(client, assertion), 401, "invalid_client")
    assert "jti" in body["error_description"]
    assert not UsedAssertion.objects.exists()


def test_introspecting_a_token_whose_kid_has_a_nul_says_inactive(client, guide_client):
    key = keys.current_loaded_key()
    token = jwt.encode(
        {"iss": "x", "sub": "x", "client_id": "x", "jti": "x", "exp": 9999999999, "iat": 1},
        key.private_key,
        algorithm=key.algorithm,
        headers={"kid": "k\x00"},
    )
    assert answer(introspect(client, guide_client, token)) == {"active": False}


@pytest.mark.parametrize(
    "path",
    [
        "/orgs/org_1%00/clients",  # the portal
        "/admin/clients/apiclient/m2morg_1%00/change/",  # the admin
    ],
)
def test_a_page_whose_path_has_a_nul_is_not_found(admin_client, path):
    assert admin_client.get(path).status_code == 404


def test_an_api_path_with_a_nul_is_the_apis_own_not_found(client):
    response = client.get("/api/v1/organizations/org_1%00/clients")
    assert response.status_code == 404
    assert response.json()["message"] == "not found"


@pytest.mark.parametrize(
    "path",
    [
        "/orgs/{org}/clients?q=a%00",  # the portal's client search
        "/orgs/{org}/audit?client=m2morg_1%00",  # the portal's activity filter
    ],
)
def test_a_query_parameter_with_a_nul_is_a_bad_request(guide_client, path):
    organization = guide_client.client.organization
    user = make_user("nul@acme.test")
    Membership.objects.create(user=user, organization=organization, role=Membership.Role.OWNER)
    browser = logged_in(user)
    assert browser.get(path.format(org=organization.id).replace("%00", "")).status_code == 200
    assert browser.get(path.format(org=organization.id)).status_code == 400


def test_an_api_query_parameter_with_a_nul_is_the_apis_own_bad_request(client):
    response = client.get("/api/v1/organizations?page_token=a%00")
    assert response.status_code == 400
    assert "NUL" in response.json()["message"]
