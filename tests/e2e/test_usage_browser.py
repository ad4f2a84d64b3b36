"""The usage pages in real Chromium (issue 20): the organization's usage page and a client's
usage panel, at desktop (1280x800) and phone (390x844) sizes, with screenshots in
``test-results/screenshots`` (usage-*.png).

The server counts tokens in memory and writes them once a minute, so the test seeds a week of
hourly counts into the server's database with ``manage.py shell`` (as the flushes would have
written them) besides asking for real tokens.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import SCREENSHOTS, LiveServer
from tests.e2e.test_portal_browser import (  # noqa: F401 (fixtures)
    browser,
    context,
    copy_secret,
    register_guide_client,
    server,
    shot,
    sign_up,
    token_request,
    unique_email,
)

pytestmark = pytest.mark.browser

SEED = """
from datetime import timedelta
from clients.models import ApiClient
from clients.services import Actor, client_update, organization_update
from oauth import usage
from oauth.models import TokenUsage
client = ApiClient.objects.get(pk={client_id!r})
organization_update(actor=Actor.system("e2e"), organization=client.organization,
                    token_quota={{"per_hour": 2000, "per_day": 20000}})
client_update(actor=Actor.system("e2e"), client=client,
              token_quota={{"per_hour": 1500, "per_day": 15000, "mode": "observe"}})
now = usage.floor(usage.utc_now(), "hour")
for back in range(24 * 8):
    hour = now - timedelta(hours=back)
    busy = 40 + (hour.hour * 37) % 90 + (150 if 9 <= hour.hour <= 17 else 0)
    # update_or_create: the server may have flushed this hour's own tokens already.
    TokenUsage.objects.update_or_create(hour=hour, client_id=client.id, reason="",
                                        defaults={{"organization_id": client.organization_id,
                                                   "count": busy}})
    if back % 5 == 0:
        TokenUsage.objects.update_or_create(
            hour=hour, client_id=client.id,
            reason="invalid_scope" if back % 2 else "invalid_client",
            defaults={{"organization_id": client.organization_id, "count": 3 + back % 7}})
"""


def test_usage_pages_at_desktop_and_phone_sizes(context, server: LiveServer):  # noqa: F811
    page = context.new_page()
    org_id = sign_up(page, server, unique_email("usage"), "Usage Corp")
    register_guide_client(page)
    secret = copy_secret(page)
    client_id = page.locator("#client-id").inner_text()
    for _ in range(3):
        assert token_request(server, client_id, secret).status_code == 200
    server.manage("shell", "-c", SEED.format(client_id=client_id))

    for width, height, size in ((1280, 800, "desktop"), (390, 844, "phone")):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"/orgs/{org_id}/usage")
        expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()
        chart = page.get_by_role("img", name="Token requests of Usage Corp, last 24 hours")
        expect(chart).to_be_visible()
        # The advisor: far more tokens per hour than an hour-long token justifies.
        expect(page.get_by_text("requests a new token every").first).to_be_visible()
        expect(page.get_by_role("link", name="ClientCredentials").first).to_be_visible()
        expect(page.get_by_role("meter").first).to_be_visible()
        shot(page, f"usage-organization-{size}")
        page.locator("main").screenshot(
            path=str(SCREENSHOTS / f"usage-organization-main-{size}.png")
        )
        page.get_by_role("link", name="Last 7 days").click()
        expect(
            page.get_by_role("img", name="Token requests of Usage Corp, last 7 days")
        ).to_be_visible()
        if size == "desktop":
            shot(page, "usage-organization-7d-desktop")
        page.goto(f"/orgs/{org_id}/clients/{client_id}")
        expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()
        expect(page.get_by_role("button", name="Save quota")).to_be_visible()
        shot(page, f"usage-client-{size}")
        page.locator("#usage").screenshot(path=str(SCREENSHOTS / f"usage-client-panel-{size}.png"))
        # Without JavaScript's help the table is one click away: it holds the same figures.
        page.get_by_text("Show the figures as a table").first.click()
        expect(page.locator(".chart-table table").first).to_be_visible()
    page.set_viewport_size({"width": 1280, "height": 800})
