"""The Content-Security-Policy in real Chromium: no page, portal or staff console, breaks it.

Chromium reports every blocked inline script, style or foreign resource as a
``securitypolicyviolation`` event and a console error; both are collected while the pages are
used (htmx included: the claim rows are added in place) and must stay empty.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import test_portal_browser as portal_browser
from tests.e2e.test_portal_browser import register_guide_client, sign_up, unique_email

# The same Chromium and live server as the portal's browser tests.
browser = portal_browser.browser
server = portal_browser.server
context = portal_browser.context

pytestmark = pytest.mark.browser

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}`);
});
"""


def watch(page: Page) -> list[str]:
    problems: list[str] = []
    page.add_init_script(RECORD_VIOLATIONS)
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return problems


def violations(page: Page) -> list[str]:
    return page.evaluate("window.__cspViolations || []")


def test_the_portal_and_the_console_run_under_the_policy(context, server):
    page = context.new_page()
    problems = watch(page)
    seen: list[str] = []
    org_id = sign_up(page, server, unique_email("csp"), "CSP Corp")
    register_guide_client(page)  # htmx: "Add a claim" swaps a row in
    seen += violations(page)
    for path in [f"/orgs/{org_id}/clients", f"/orgs/{org_id}/audit", f"/orgs/{org_id}/members"]:
        page.goto(path)
        seen += violations(page)
    # htmx really ran under the policy: the member page's invite form is there, the claim row was
    # added above; an inline indicator style would have shown up as a violation.
    expect(page.get_by_role("heading", name="Members")).to_be_visible()

    username = unique_email("staff")
    server.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model as g; "
        f"g().objects.create_superuser('{username}', '{username}', 'staff password 1234')",
    )
    staff = context.browser.new_context(base_url=server.url)
    admin = staff.new_page()
    problems += watch(admin)
    admin.goto("/admin/login/")
    admin.get_by_label("Username").fill(username)
    admin.get_by_label("Password").fill("staff password 1234")
    admin.get_by_role("button", name="Log in").click()
    expect(admin.get_by_text("Welcome,")).to_be_visible()
    seen += violations(admin)
    for path in ["/admin/clients/apiclient/", "/admin/clients/apiclient/add/", "/admin/auth/user/"]:
        admin.goto(path)
        seen += violations(admin)
    staff.close()
    assert seen == []
    assert problems == []
