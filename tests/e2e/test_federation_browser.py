"""Workload identity federation in real Chromium against a real server process (``-m browser``):
add a trust policy from the GitHub Actions preset, test a token from a local OIDC issuer in the
live box, read the workflow snippet; then trade the same token for an access token over HTTP.
Screenshots go to ``test-results/screenshots`` (federation-*.png)."""

from __future__ import annotations

from collections.abc import Iterator

import jwt
import pytest
import requests
from playwright.sync_api import expect

from tests.e2e.conftest import LiveServer, live_server
from tests.e2e.test_portal_browser import (
    CLIENT_NAME,
    browser,  # noqa: F401 (the module's Chromium fixture)
    new_context,
    register_guide_client,
    shot,
    sign_up,
    unique_email,
)
from tests.oidc_issuer import Issuer, local_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    """The live server, allowed (test-only) to fetch keys from an issuer on 127.0.0.1."""
    with live_server(tmp_path_factory, "federation", OUTBOUND_ALLOW_INSECURE="true") as live:
        yield live


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with local_server() as oidc:
        yield Issuer(oidc)


def test_add_a_github_policy_test_a_token_and_see_the_workflow(browser, server, issuer):  # noqa: F811
    context = new_context(browser, server)
    page = context.new_page()
    sign_up(page, server, unique_email("fed"), "Acme Corp")
    register_guide_client(page)
    client_id = page.locator("#client-id").inner_text()
    # The client's page, from the list (the secret is not shown again). Not a reload of the
    # answer's URL: that may be the registration form's own.
    page.goto(page.url.split("/clients")[0] + "/clients")
    page.get_by_role("link", name=CLIENT_NAME).first.click()
    expect(page.get_by_role("heading", name="Federation")).to_be_visible()

    # The GitHub Actions preset fills the form; the local issuer stands in for GitHub's.
    page.get_by_role("link", name="GitHub Actions").click()
    expect(page.get_by_label("Issuer")).to_have_value("https://token.actions.githubusercontent.com")
    expect(page.get_by_label("Audience")).to_have_value(server.url)
    shot(page, "federation-1-github-preset")
    page.get_by_label("Issuer").fill(issuer.url)
    page.get_by_label("Subject").fill("repo:acmecorp/*:environment:production")
    page.get_by_label("Claim conditions").fill("repository_owner = acmecorp\nref = refs/heads/main")
    page.get_by_role("button", name="Add trust policy").click()
    expect(page.get_by_text("Added the trust policy")).to_be_visible()

    # The live box: a matching token passes every check, a wrong owner fails one.
    good = issuer.github_token(server.url)
    page.get_by_label("External token").fill(good)
    page.get_by_role("button", name="Test the token").click()
    expect(page.locator("#test-result")).to_contain_text("admitted")
    expect(page.locator("#test-result li")).to_have_count(8)
    shot(page, "federation-2-token-admitted")
    bad = issuer.github_token(server.url, repository_owner="evilcorp")
    page.get_by_label("External token").fill(bad)
    page.get_by_role("button", name="Test the token").click()
    expect(page.locator("#test-result")).to_contain_text(
        "the external token's repository_owner claim does not match the policy"
    )
    shot(page, "federation-3-token-refused")

    # The workflow snippet names this client and the jwt-bearer grant.
    snippet = page.locator("#github-workflow").inner_text()
    assert "id-token: write" in snippet and f"client_id={client_id}" in snippet
    assert "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer" in snippet
    page.locator("#github-workflow").scroll_into_view_if_needed()
    shot(page, "federation-4-workflow")

    # The same token, traded for an access token at the real server: no secret involved.
    response = requests.post(
        f"{server.url}/oauth/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "client_id": client_id,
            "assertion": good,
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["act"]["iss"] == issuer.url and claims["client_id"] == client_id
    context.close()
