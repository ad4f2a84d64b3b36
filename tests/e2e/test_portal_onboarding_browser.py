"""The portal's first minutes in real Chromium (``-m browser``): the landing page, log-out and
log-in with another capitalisation, the catalog, the first steps, a double-clicked register
button, one-pass form errors, the readable activity log with its filters, and invitations
(duplicate, resend, cancel, used link). Each page is shot at desktop and phone sizes into
``test-results/screenshots`` (``onboarding-*-desktop.png`` / ``-phone.png``).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import test_portal_browser as portal_browser
from tests.e2e.test_portal_browser import (
    CLIENT_NAME,
    PASSWORD,
    new_context,
    register_guide_client,
    shot,
    sign_up,
    unique_email,
)

pytestmark = pytest.mark.browser

browser = portal_browser.browser
server = portal_browser.server
context = portal_browser.context

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def shots(page: Page, name: str) -> None:
    """The page at desktop and at phone width."""
    shot(page, f"onboarding-{name}-desktop")
    page.set_viewport_size(PHONE)
    shot(page, f"onboarding-{name}-phone")
    page.set_viewport_size(DESKTOP)


def test_landing_log_out_and_log_in_with_another_capitalisation(context, server):
    page = context.new_page()
    page.goto("/")
    expect(
        page.get_by_role("heading", name="Give your services access to our APIs")
    ).to_be_visible()
    expect(page.get_by_role("link", name="Sign up")).to_be_visible()
    shots(page, "1-landing")
    email = unique_email("Mixed.Case").replace("example.test", "Example.TEST")
    sign_up(page, server, email, "Case Corp")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("You are logged out.")).to_be_visible()
    shots(page, "2-logged-out")
    page.get_by_role("link", name="Log in").first.click()
    page.get_by_label("E-mail").fill(email.upper())
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="API clients")).to_be_visible()


def test_catalog_first_steps_double_click_and_one_pass_errors(context, server):
    page = context.new_page()
    org_id = sign_up(page, server, unique_email("owner"), "Onboarding Corp")
    expect(page.get_by_text("Get your first access token in three steps")).to_be_visible()
    shots(page, "3-first-steps")
    page.get_by_role("link", name="APIs", exact=True).click()
    expect(page.get_by_role("heading", name="Deployment API")).to_be_visible()
    expect(page.get_by_text("deploy:applications")).to_be_visible()
    shots(page, "4-catalog")

    # One pass: every mistake at once, each beside its field or claim row.
    page.goto(f"/orgs/{org_id}/clients/new")
    page.get_by_label("Token lifetime (seconds)").fill("59")
    api_box = page.locator("input[name=audience][value='deployment-api.acmecorp.com']")
    expect(api_box).not_to_be_checked()
    page.locator("input[name=scopes][value='read:deployments']").check()
    expect(api_box).to_be_checked()  # ticking a scope ticks its API
    page.locator("input[name=claim_key]").nth(0).fill("sub")
    page.locator("input[name=claim_value]").nth(0).fill("someone-else")
    page.get_by_role("button", name="Register client").click()
    name_field = page.locator(".field", has=page.locator("#id_name"))
    expect(name_field.locator(".error")).to_have_text("This field is required.")
    expiry_field = page.locator(".field", has=page.locator("#id_expiry"))
    expect(expiry_field.locator(".error")).to_contain_text("between 60 and 86400")
    expect(page.locator(".claim-row").nth(0).locator(".claim-error")).to_contain_text(
        "registered claim name"
    )
    shots(page, "5-form-errors")

    # A double click registers one client.
    page.get_by_label("Name", exact=True).fill(CLIENT_NAME)
    page.get_by_label("Token lifetime (seconds)").fill("3600")
    page.locator("input[name=claim_key]").nth(0).fill("environment")
    page.locator("input[name=claim_value]").nth(0).fill("production_us")
    page.get_by_role("button", name="Register client").dblclick()
    expect(page.get_by_text("it is shown only once")).to_be_visible()
    shots(page, "6-secret-once")
    page.goto(f"/orgs/{org_id}/clients")
    expect(page.get_by_role("link", name=CLIENT_NAME)).to_have_count(1)
    shots(page, "7-client-list")
    page.get_by_role("link", name=CLIENT_NAME).click()
    shots(page, "8-client-detail")


def test_the_activity_log_reads_as_sentences_and_filters(context, server):
    page = context.new_page()
    email = unique_email("owner")
    org_id = sign_up(page, server, email, "Activity Corp")
    register_guide_client(page)
    page.get_by_role("link", name="go to the client").click()
    page.get_by_label("Token lifetime (seconds)").fill("600")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text(f"Saved {CLIENT_NAME}")).to_be_visible()
    page.get_by_role("button", name="Generate new secret").click()
    expect(page.get_by_text("it is shown only once")).to_be_visible()

    page.goto(f"/orgs/{org_id}/audit")
    sentences = page.locator(".sentence")
    expect(sentences.first).to_have_text(re.compile(rf"^{re.escape(email)} generated secret …"))
    expect(page.get_by_text(f"{email} registered client {CLIENT_NAME}")).to_be_visible()
    expect(page.get_by_text("token lifetime: 3600 → 600")).to_be_visible()
    expect(page.get_by_text("client.create")).to_have_count(0)
    shots(page, "9-activity")

    page.get_by_label("Kind").select_option("secret")  # htmx swaps the list in place
    expect(sentences).to_have_count(2)
    for text in sentences.all_inner_texts():
        assert "generated secret" in text
    assert "kind=secret" in page.url
    page.get_by_label("Kind").select_option("client")
    expect(sentences).to_have_count(2)
    page.get_by_label("Kind").select_option("")
    page.get_by_label("Person").select_option(label=email)
    # The organization, its first member, the client, its update, two secrets.
    expect(sentences).to_have_count(6)
    shots(page, "10-activity-filtered")


def test_invitations_duplicate_resend_cancel_and_used_links(browser, context, server):
    page = context.new_page()
    org_id = sign_up(page, server, unique_email("owner"), "Invite Corp")
    page.goto(f"/orgs/{org_id}/members")
    invitee, other = unique_email("invitee"), unique_email("other")
    for address in (invitee, other):
        page.get_by_label("E-mail").fill(address)
        page.get_by_role("button", name="Send invitation").click()
        expect(page.get_by_text(f"Invitation sent to {address}")).to_be_visible()
    # The same address again (in capitals): a field error, not a second invitation.
    page.get_by_label("E-mail").fill(invitee.upper())
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".field.has-error .error")).to_contain_text("is invited already")
    page.goto(f"/orgs/{org_id}/members")
    expect(page.locator(".invitations li")).to_have_count(2)
    page.get_by_role("button", name=f"Resend to {invitee}").click()
    expect(page.get_by_text(f"Sent the invitation to {invitee} again.")).to_be_visible()
    shots(page, "11-members-invitations")
    mails = server.mails()
    links = [
        re.search(r"http://\S+/invitations/\S+", m).group(0) for m in mails if f"To: {invitee}" in m
    ]
    assert len(links) == 2  # the first mail and the resent one
    other_link = next(
        re.search(r"http://\S+/invitations/\S+", m).group(0) for m in mails if f"To: {other}" in m
    )
    page.get_by_role("button", name=f"Cancel the invitation of {other}").click()
    expect(page.get_by_text(f"Cancelled the invitation of {other}.")).to_be_visible()
    expect(page.locator(".invitations li")).to_have_count(1)

    guest = new_context(browser, server)
    try:
        visitor = guest.new_page()
        assert visitor.goto(other_link).status == 410
        expect(
            visitor.get_by_role("heading", name="This invitation is no longer valid")
        ).to_be_visible()
        shots(visitor, "12-invitation-cancelled")
        visitor.goto(links[-1])
        visitor.get_by_label("Password", exact=True).fill(PASSWORD)
        visitor.get_by_label("Password again").fill(PASSWORD)
        visitor.get_by_role("button", name="Create account and join").click()
        expect(visitor.get_by_text("Welcome to Invite Corp")).to_be_visible()
        assert visitor.goto(links[0]).status == 410
        expect(
            visitor.get_by_role("heading", name="This invitation was already used")
        ).to_be_visible()
        shots(visitor, "13-invitation-used")
    finally:
        guest.close()
