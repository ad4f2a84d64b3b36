"""portal.serving.middleware: the request id and the access line of each request, and the
guard against a NUL in a path or a query parameter.

Operators search the access lines by request id, client and organization, so those fields are
checked, and no credential may ever appear in them. A NUL is refused before any view reads it:
our ids and searches are compared with text columns, and PostgreSQL text cannot hold a NUL (the
query would fail). A path with one names nothing (404), a query parameter with one is a bad
request (400), each in the API's own format under /api/.
"""

from __future__ import annotations

import pytest

from clients.models import Membership
from tests.conftest import Credentials, logged_in, member, post_form, request_token
from tests.serving.helpers import captured_json


def access_lines(handler) -> list[dict]:
    return [line for line in handler.parsed() if line["logger"] == "portal.access"]


def test_a_sane_request_id_is_returned_as_given(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="req-7f3a.b_c:9")
    assert response["X-Request-ID"] == "req-7f3a.b_c:9"


def test_a_request_id_is_generated_when_absent(client):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != second


@pytest.mark.parametrize(
    "given",
    ["x" * 129, "has space", 'quote"s', "new\nline", "émoji", "{json}", ""],
)
def test_an_insane_request_id_is_replaced(client, given):
    with captured_json("portal.access") as logs:
        response = client.get("/healthz", HTTP_X_REQUEST_ID=given)
    returned = response["X-Request-ID"]
    assert returned != given and len(returned) == 32
    (line,) = access_lines(logs)
    assert line["request_id"] == returned


def test_one_access_line_per_request_with_its_fields(client):
    with captured_json("portal.access") as logs:
        response = client.get("/healthz?token=do-not-log-me", HTTP_X_REQUEST_ID="abc-123")
    (line,) = access_lines(logs)
    assert line["level"] == "INFO"
    assert line["request_id"] == "abc-123" == response["X-Request-ID"]
    assert line["method"] == "GET"
    assert line["path"] == "/healthz"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0
    assert line["client_ip"] == "127.0.0.1"
    assert line["outcome"] == "ok"
    assert line["time"].endswith("+00:00")
    assert "do-not-log-me" not in logs.lines[0]


@pytest.mark.django_db
def test_an_issued_token_line_names_the_client_and_never_the_secret(client, guide_client):
    with captured_json() as logs:
        response = post_form(
            client,
            "/oauth/token",
            {"grant_type": "client_credentials"},
            HTTP_AUTHORIZATION=guide_client.basic(),
            HTTP_X_REQUEST_ID="tok-1",
        )
    assert response.status_code == 200
    access_token = response.json()["access_token"]
    (line,) = access_lines(logs)
    assert line["path"] == "/oauth/token" and line["method"] == "POST"
    assert line["status"] == 200
    assert line["outcome"] == "token_issued"
    assert line["auth_method"] == "client_secret_basic"
    assert line["client_id"] == guide_client.client_id
    assert line["organization_id"] == guide_client.client.organization_id
    everything = "\n".join(logs.lines)
    for leaked in (guide_client.secret, access_token, guide_client.basic().split()[1], "Basic "):
        assert leaked not in everything
    assert "authorization" not in everything.lower()


@pytest.mark.django_db
def test_a_refused_token_line_has_the_reason_and_never_the_secret(client, guide_client):
    wrong = Credentials(guide_client.client, guide_client.secret[:-2] + "zz")
    with captured_json() as logs:
        response = request_token(client, wrong)
    assert response.status_code == 401
    (line,) = access_lines(logs)
    assert line["outcome"] == "invalid_client"
    assert line["status"] == 401
    assert line["client_id"] == guide_client.client_id
    assert "organization_id" not in line
    everything = "\n".join(logs.lines)
    assert wrong.secret not in everything and guide_client.secret not in everything


@pytest.mark.django_db
def test_a_secret_pasted_as_client_id_is_not_logged(client, guide_client):
    pasted = Credentials(guide_client.client, guide_client.secret)
    pasted.client.id = guide_client.secret  # the caller swapped the two fields
    with captured_json() as logs:
        response = request_token(client, pasted)
    assert response.status_code == 401
    (line,) = access_lines(logs)
    assert "client_id" not in line
    assert guide_client.secret not in "\n".join(logs.lines)


# --- A NUL in a path or a query parameter: refused before any view reads it --------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/orgs/org_1%00/clients",  # the portal
        "/admin/clients/apiclient/m2morg_1%00/change/",  # the admin
    ],
)
def test_a_page_whose_path_has_a_nul_is_not_found(admin_client, path):
    assert admin_client.get(path).status_code == 404


@pytest.mark.django_db
def test_an_api_path_with_a_nul_is_the_apis_own_not_found(client):
    response = client.get("/api/v1/organizations/org_1%00/clients")
    assert response.status_code == 404
    assert response.json()["message"] == "not found"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/orgs/{org}/clients?q=a%00",  # the portal's client search
        "/orgs/{org}/audit?client=m2morg_1%00",  # the portal's activity filter
    ],
)
def test_a_query_parameter_with_a_nul_is_a_bad_request(guide_client, path):
    organization = guide_client.client.organization
    browser = logged_in(member("nul@acme.test", organization, Membership.Role.OWNER))
    assert browser.get(path.format(org=organization.id).replace("%00", "")).status_code == 200
    assert browser.get(path.format(org=organization.id)).status_code == 400


@pytest.mark.django_db
def test_an_api_query_parameter_with_a_nul_is_the_apis_own_bad_request(client):
    response = client.get("/api/v1/organizations?page_token=a%00")
    assert response.status_code == 400
    assert "NUL" in response.json()["message"]
