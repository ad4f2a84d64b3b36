"""Secret safety in real Chromium against a real server process (``-m browser``): a secret
reported leaked through the management API shows, on the client's page, where it leaked; the
owner is mailed; the owner switches the organization to notify-only and sets a maximum secret
lifetime on the Settings page. Screenshots go to ``test-results/screenshots``."""

from __future__ import annotations

import json
import re
import uuid
from email import message_from_string, policy

import pytest
import requests
from playwright.sync_api import expect

from tests.e2e.test_portal_browser import (  # noqa: F401 (fixtures)
    browser,
    context,
    copy_secret,
    register_guide_client,
    server,
    shot,
    sign_up,
    token_request,
)

pytestmark = pytest.mark.browser
LEAK_URL = "https://github.com/octo/app/blob/abc123/deploy.env"


def test_a_leaked_secret_is_shown_and_the_settings_are_changed(context, server):  # noqa: F811
    page = context.new_page()
    email = f"owner-{uuid.uuid4().hex[:8]}@example.test"
    org_id = sign_up(page, server, email, "Leaky Widgets")
    register_guide_client(page)
    secret = copy_secret(page)
    assert re.fullmatch(r"m2ms_[0-9A-Za-z]{49}", secret)
    client_id = re.search(r"m2morg_\d+", page.content()).group(0)
    assert token_request(server, client_id, secret).status_code == 200

    made = json.loads(server.manage("create_management_client", "--name", uuid.uuid4().hex).stdout)
    token = requests.post(
        f"{server.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(made["client_id"], made["client_secret"]),
        timeout=10,
    ).json()["access_token"]
    reported = requests.post(
        f"{server.url}/api/v1/secrets:report-leak",
        json={"secrets": [secret], "url": LEAK_URL, "source": "commit"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert reported.status_code == 200, reported.text
    assert reported.json()["results"][0]["label"] == "true_positive"
    assert token_request(server, client_id, secret).status_code == 401

    page.goto(f"/orgs/{org_id}/clients/{client_id}")
    leak = page.locator(".leak")
    expect(leak).to_contain_text("was found in public")
    expect(leak.get_by_role("link", name=LEAK_URL)).to_have_attribute("href", LEAK_URL)
    expect(leak).to_contain_text("revoked at once")
    expect(page.locator(".status-leaked")).to_have_text("Leaked")
    shot(page, "secret-leaked-client-page")

    mails = [message_from_string(m, policy=policy.default) for m in server.mails()]
    leaked = [m for m in mails if "found in public" in " ".join(str(m["Subject"]).split())]
    assert len(leaked) == 1, [m["Subject"] for m in mails]
    assert leaked[0]["To"] == email.lower()
    text = leaked[0].get_body(("plain",)).get_content()
    assert LEAK_URL in text and "Leaky Widgets" in text and secret not in text

    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Settings of Leaky Widgets")).to_be_visible()
    page.get_by_label("Notify only (the secret keeps working)").check()
    page.get_by_label("Maximum secret lifetime (days)").fill("30")
    shot(page, "organization-settings")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Saved the organization's settings.")).to_be_visible()
    expect(page.get_by_label("Notify only (the secret keeps working)")).to_be_checked()
    expect(page.get_by_label("Maximum secret lifetime (days)")).to_have_value("30")

    # A new secret now expires in 30 days, shown on the client's page.
    page.goto(f"/orgs/{org_id}/clients/{client_id}")
    page.get_by_role("button", name="Generate new secret").click()
    page.goto(f"/orgs/{org_id}/clients/{client_id}")
    expect(page.locator("#secrets")).to_contain_text("in 30 days")
    shot(page, "client-page-expiry")
