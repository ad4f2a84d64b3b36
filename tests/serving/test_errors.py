"""Refusals Django makes before any view runs (portal.serving.errors) keep each face's format."""

from __future__ import annotations

import pytest

from tests.conftest import post_form

BAD_HOSTS = ["evil.example.com", "bad host!", "a" * 300]


@pytest.fixture(autouse=True)
def one_host(settings):
    settings.ALLOWED_HOSTS = ["testserver"]


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_an_unknown_host_under_the_api_is_the_apis_error(client, host):
    response = client.get("/api/v1/organizations", HTTP_HOST=host)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == 3 and body["details"] == [{"error_code": "INVALID_ARGUMENT"}]
    assert "Host" in body["message"]


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_an_unknown_host_at_the_token_endpoint_is_an_oauth_error(client, host):
    response = post_form(
        client, "/oauth/token", {"grant_type": "client_credentials"}, HTTP_HOST=host
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert response.json()["error"] == "invalid_request"


def test_an_unknown_host_on_discovery_is_an_oauth_error(client):
    response = client.get("/.well-known/jwks.json", HTTP_HOST="evil.example.com")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_an_unknown_host_on_a_portal_page_is_djangos_html_page(client):
    response = client.get("/login/", HTTP_HOST="evil.example.com")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert b"Bad Request" in response.content


def test_the_same_request_with_a_known_host_is_served(client):
    assert client.get("/api/v1/organizations").status_code == 401
