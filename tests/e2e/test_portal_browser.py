"""The portal in real Chromium against a real server process (``-m browser``).

Sign up, register the guide's client, copy its secret, use it, rotate it, delete the client;
invite a viewer; check that another organization sees 404. Screenshots of the main pages go
to ``test-results/screenshots`` (the path is printed at the end of the run).
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator

import jwt
import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.e2e.conftest import SCREENSHOTS, LiveServer

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PASSWORD = "a long and unusual passphrase 42"
CLIENT_NAME = "GitHub Actions Deployment Service"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("Chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def server(live_server_process) -> LiveServer:
    return live_server_process


def new_context(browser: Browser, server: LiveServer) -> BrowserContext:
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    return context


@pytest.fixture
def context(browser, server) -> Iterator[BrowserContext]:
    context = new_context(browser, server)
    yield context
    context.close()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def unique_email(who: str) -> str:
    return f"{who}-{uuid.uuid4().hex[:8]}@example.test"


def sign_up(page: Page, server: LiveServer, email: str, organization: str) -> str:
    """Sign up, confirm with the mailed link; returns the new organization's id (from the URL
    it lands on)."""
    page.goto("/signup")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Organization name").fill(organization)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    # Addresses are kept in lower case (any capitalisation is the same account).
    mail = next(m for m in reversed(server.mails()) if f"To: {email.lower()}" in m)
    page.goto(re.search(r"http://\S+/signup/confirm/\S+", mail).group(0))
    page.get_by_role("button", name="Confirm and open my account").click()
    expect(page.get_by_role("heading", name="API clients")).to_be_visible()
    return re.search(r"/orgs/([^/]+)/clients", page.url).group(1)


def register_guide_client(page: Page, screenshot: bool = False) -> None:
    page.get_by_role("link", name="Register a client").first.click()
    page.get_by_label("Name", exact=True).fill(CLIENT_NAME)
    page.get_by_label("Description").fill(
        "Service account for GitHub Actions to deploy applications to production"
    )
    page.locator("input[name=audience][value='deployment-api.acmecorp.com']").check()
    page.locator("input[name=scopes][value='deploy:applications']").check()
    page.locator("input[name=scopes][value='read:deployments']").check()
    page.locator("input[name=claim_key]").nth(0).fill("github_repository")
    page.locator("input[name=claim_value]").nth(0).fill("acmecorp/inventory-service")
    # Added in place by htmx.
    page.get_by_role("button", name="Add a claim").click()
    expect(page.locator("input[name=claim_key]")).to_have_count(2)
    page.locator("input[name=claim_key]").nth(1).fill("environment")
    page.locator("input[name=claim_value]").nth(1).fill("production_us")
    expect(page.get_by_label("Token lifetime (seconds)")).to_have_value("3600")
    if screenshot:
        shot(page, "2-register-form")
    page.get_by_role("button", name="Register client").click()
    expect(page.get_by_text("it is shown only once")).to_be_visible()


def token_request(server: LiveServer, client_id: str, secret: str) -> requests.Response:
    return requests.post(
        f"{server.url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=10,
    )


def copy_secret(page: Page) -> str:
    page.get_by_role("button", name="Copy secret").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    return page.evaluate("navigator.clipboard.readText()")


def test_sign_up_register_rotate_and_delete(context, server):
    page = context.new_page()
    sign_up(page, server, unique_email("owner"), "Acme Corp")
    register_guide_client(page, screenshot=True)

    # The secret, once: copied with the button, it gets a token at the real server.
    shot(page, "3-secret-once")
    first_secret = copy_secret(page)
    assert first_secret == page.locator("#client-secret").inner_text()
    client_id = page.locator("#client-id").inner_text()
    assert first_secret in page.locator("#curl-command").inner_text()
    response = token_request(server, client_id, first_secret)
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "deployment-api.acmecorp.com" and claims["iss"] == server.url
    assert claims["environment"] == "production_us"

    # Reload shows the client's page: the suffix, never the secret.
    page.reload()
    expect(page.get_by_role("heading", name=CLIENT_NAME)).to_be_visible()
    assert first_secret not in page.content()
    expect(page.get_by_text(f"…{first_secret[-4:]}")).to_be_visible()
    page.go_back()
    assert first_secret not in page.content()
    page.go_forward()
    assert first_secret not in page.content()
    shot(page, "4-client-detail")

    # Rotation: a second secret, then revoke the first (confirmed in place).
    page.get_by_role("button", name="Generate new secret").click()
    expect(page.get_by_text("it is shown only once")).to_be_visible()
    second_secret = copy_secret(page)
    assert second_secret != first_secret
    page.get_by_role("link", name="go to the client").click()
    page.get_by_role("link", name=f"Revoke the secret ending in {first_secret[-4:]}").click()
    page.get_by_role("button", name=f"Yes, revoke …{first_secret[-4:]}").click()
    expect(page.get_by_text(f"Revoked the secret ending in {first_secret[-4:]}")).to_be_visible()
    # Listed as revoked for a while, rather than vanishing.
    revoked = page.locator("tr.revoked", has_text=f"…{first_secret[-4:]}")
    expect(revoked).to_contain_text("Revoked")
    expect(page.locator("tr:not(.revoked)", has_text=f"…{first_secret[-4:]}")).to_have_count(0)
    assert token_request(server, client_id, first_secret).status_code == 401
    assert token_request(server, client_id, second_secret).status_code == 200

    page.get_by_role("link", name="Activity", exact=True).click()
    expect(
        page.get_by_text(
            re.compile(rf"revoked secret …{re.escape(first_secret[-4:])} of {CLIENT_NAME}")
        )
    ).to_be_visible()
    shot(page, "5-audit-log")
    page.get_by_role("link", name="Members").click()
    shot(page, "6-members")
    page.get_by_role("link", name="API clients").click()
    shot(page, "1-client-list")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    shot(page, "7-client-list-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Delete, typing the name.
    page.get_by_role("link", name=CLIENT_NAME).click()
    page.get_by_role("link", name="Delete client").click()
    page.get_by_label("Type the client's name to confirm").fill(CLIENT_NAME.lower())
    page.get_by_role("button", name="Delete this client").click()
    expect(page.locator(".field .error", has_text="the name does not match")).to_be_visible()
    page.get_by_label("Type the client's name to confirm").fill(CLIENT_NAME)
    page.get_by_role("button", name="Delete this client").click()
    expect(page.get_by_text(f"Deleted {CLIENT_NAME}")).to_be_visible()
    assert token_request(server, client_id, second_secret).status_code == 401


def test_an_invited_viewer_sees_no_change_buttons_and_is_refused(browser, context, server):
    owner_page = context.new_page()
    org_id = sign_up(owner_page, server, unique_email("owner"), "Viewer Test Org")
    register_guide_client(owner_page)
    client_id = owner_page.locator("#client-id").inner_text()

    viewer_email = unique_email("viewer")
    owner_page.goto(f"/orgs/{org_id}/members")
    owner_page.get_by_label("E-mail").fill(viewer_email)
    owner_page.get_by_label("Role", exact=True).select_option("viewer")
    owner_page.get_by_role("button", name="Send invitation").click()
    expect(owner_page.get_by_text(f"Invitation sent to {viewer_email}")).to_be_visible()
    mail = next(m for m in reversed(server.mails()) if viewer_email in m)
    link = re.search(r"http://\S+/invitations/\S+", mail).group(0)

    viewer_context = new_context(browser, server)
    try:
        page = viewer_context.new_page()
        page.goto(link)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Password again").fill(PASSWORD)
        page.get_by_role("button", name="Create account and join").click()
        expect(page.get_by_text("Welcome to Viewer Test Org")).to_be_visible()
        expect(page.get_by_role("link", name="Register a client")).to_have_count(0)
        page.get_by_role("link", name=CLIENT_NAME).click()
        expect(page.get_by_text("You have read-only access")).to_be_visible()
        for name in ("Generate new secret", "Save changes", "Delete client", "Revoke"):
            expect(page.get_by_role("button", name=name)).to_have_count(0)
            expect(page.get_by_role("link", name=re.compile(name))).to_have_count(0)
        # A forged POST, with a valid CSRF token, is refused by the server anyway.
        csrf = next(c["value"] for c in viewer_context.cookies() if c["name"] == "csrftoken")
        forged = page.request.post(
            f"/orgs/{org_id}/clients/{client_id}/secrets/new", headers={"X-CSRFToken": csrf}
        )
        assert forged.status == 403
        forged = page.request.post(
            f"/orgs/{org_id}/clients/{client_id}/delete",
            headers={"X-CSRFToken": csrf},
            form={"name": CLIENT_NAME},
        )
        assert forged.status == 403
        page.reload()
        expect(page.get_by_role("heading", name=CLIENT_NAME)).to_be_visible()
        # The invitation link works once; then its page says so.
        assert page.goto(link).status == 410
        expect(page.get_by_role("heading", name="This invitation was already used")).to_be_visible()
    finally:
        viewer_context.close()


def test_another_organization_gets_404(browser, context, server):
    owner_page = context.new_page()
    org_id = sign_up(owner_page, server, unique_email("owner"), "First Org")
    register_guide_client(owner_page)
    client_id = owner_page.locator("#client-id").inner_text()

    other_context = new_context(browser, server)
    try:
        page = other_context.new_page()
        sign_up(page, server, unique_email("other"), "Second Org")
        for path in (
            f"/orgs/{org_id}/clients",
            f"/orgs/{org_id}/clients/new",
            f"/orgs/{org_id}/clients/{client_id}",
            f"/orgs/{org_id}/clients/{client_id}/delete/confirm",
            f"/orgs/{org_id}/audit",
            f"/orgs/{org_id}/members",
        ):
            response = page.goto(path)
            assert response.status == 404, path
            # (DEBUG is on in this server: Django's 404 page echoes the path, not our data.)
            assert CLIENT_NAME not in page.content()
    finally:
        other_context.close()
