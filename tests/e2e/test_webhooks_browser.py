"""The Webhooks page in real Chromium against a real server process (``-m browser``): add an
endpoint (the signing secret shown once), send a test event, watch its delivery, see a failed
one and retry it now, disable the endpoint. A real receiver verifies each delivery with the
``standardwebhooks`` library. Screenshots (desktop and phone) go to
``test-results/screenshots`` (webhooks-*.png)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveServer, live_server
from tests.e2e.test_portal_browser import (
    browser,  # noqa: F401 (the module's Chromium fixture)
    new_context,
    shot,
    sign_up,
    unique_email,
)
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    """The live server, allowed (test-only) to deliver to a receiver on 127.0.0.1."""
    with live_server(tmp_path_factory, "webhooks-browser", OUTBOUND_ALLOW_INSECURE="true") as live:
        yield live


def shots(page: Page, name: str) -> None:
    shot(page, f"webhooks-{name}-desktop")
    page.set_viewport_size(PHONE)
    shot(page, f"webhooks-{name}-phone")
    page.set_viewport_size(DESKTOP)


def deliver(server: LiveServer) -> None:
    server.manage("run_webhook_worker", "--once")


def test_add_test_watch_retry_and_disable_an_endpoint(browser, server):  # noqa: F811
    receiver = Receiver().start()
    context = new_context(browser, server)
    page = context.new_page()
    try:
        sign_up(page, server, unique_email("hooks"), "Acme Corp")
        page.get_by_role("link", name="Webhooks").click()
        expect(page.get_by_role("heading", name="Webhooks of Acme Corp")).to_be_visible()
        expect(page.get_by_text("No webhook endpoint yet.")).to_be_visible()

        # A URL we never call is refused on the form.
        page.get_by_label("Endpoint URL").fill("https://10.0.0.1/hooks")
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.locator(".error").first).to_contain_text("public address")
        shots(page, "1-refused-url")

        page.get_by_label("Endpoint URL").fill(receiver.url)
        page.get_by_label("Description").fill("Open a CRM ticket for each new client")
        page.locator("input[name=event_types][value='client.created']").check()
        page.locator("input[name=event_types][value='secret.revoked']").check()
        shots(page, "2-add-form")
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.get_by_text("it is shown only once")).to_be_visible()
        receiver.secret = page.locator("#signing-secret").inner_text()
        assert receiver.secret.startswith("whsec_")
        shots(page, "3-secret-once")

        page.get_by_role("link", name="I have copied the secret").click()
        expect(page.get_by_text("No delivery yet.")).to_be_visible()
        page.get_by_role("button", name="Send a test event").click()
        expect(page.get_by_text("Sent a test event")).to_be_visible()
        deliver(server)
        page.reload()
        row = page.locator("tbody tr").filter(has_text="webhook.test").first
        expect(row).to_contain_text("Succeeded")
        expect(row).to_contain_text("HTTP 200")
        assert [p["type"] for p in receiver.ok()] == ["webhook.test"]
        assert all(r.verified for r in receiver.received)

        # The receiver fails: the delivery shows it; "Retry now" delivers it again.
        receiver.statuses = [500]
        page.get_by_role("button", name="Send a test event").click()
        deliver(server)
        page.reload()
        failed = page.locator("tbody tr").filter(has_text="HTTP 500").first
        expect(failed).to_contain_text("Failed")
        shots(page, "4-deliveries")
        failed.get_by_role("button", name="Retry now").click()
        expect(page.get_by_text("again now")).to_be_visible()
        deliver(server)
        page.reload()
        expect(page.locator("tbody tr").filter(has_text="Succeeded")).to_have_count(2)
        assert len(receiver.ok()) == 2

        # Disable it: the list says so.
        page.get_by_label("Enabled").uncheck()
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_text("Saved the webhook endpoint.")).to_be_visible()
        page.get_by_role("link", name="Webhooks").first.click()
        expect(page.locator("tbody tr").first).to_contain_text("Disabled")
        shots(page, "5-list")
    finally:
        context.close()
        receiver.stop()
