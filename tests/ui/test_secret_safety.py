"""The portal's secret safety: the organization's settings (what a leak report does, the
longest a secret may live), and the client page's leak, expiry and unused-secret notices."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from clients.models import AuditEvent, ClientSecret
from clients.services import secret_add, secret_report_leak
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db


def settings_url(org) -> str:
    return f"/orgs/{org.id}/settings"


def client_url(creds) -> str:
    return f"/orgs/{creds.client.organization_id}/clients/{creds.client_id}"


def test_an_owner_sets_on_leak_and_the_lifetime(as_owner, org):
    page = as_owner.get(settings_url(org))
    assert page.status_code == 200
    assert b"When a secret is found in public" in page.content and b'value="revoke"' in page.content
    response = as_owner.post(
        settings_url(org) + "/update", {"on_leak": "notify", "secret_max_lifetime_days": "30"}
    )
    assert response.status_code == 302
    org.refresh_from_db()
    assert (org.on_leak, org.secret_max_lifetime_days) == ("notify", 30)
    event = AuditEvent.objects.get(action="organization.update")
    assert event.details["changes"]["on_leak"] == ["revoke", "notify"]
    # Cleared: no limit of its own.
    as_owner.post(
        settings_url(org) + "/update", {"on_leak": "revoke", "secret_max_lifetime_days": ""}
    )
    org.refresh_from_db()
    assert (org.on_leak, org.secret_max_lifetime_days) == ("revoke", None)


@pytest.mark.parametrize(
    "data",
    [
        {"on_leak": "ignore", "secret_max_lifetime_days": ""},
        {"on_leak": "revoke", "secret_max_lifetime_days": "0"},
        {"on_leak": "revoke", "secret_max_lifetime_days": "91"},
        {"on_leak": "revoke", "secret_max_lifetime_days": "ten"},
    ],
)
def test_bad_settings_are_400_and_change_nothing(as_owner, org, settings, data):
    settings.OAUTH = {**settings.OAUTH, "SECRET_MAX_LIFETIME_DAYS_CAP": 90}
    response = as_owner.post(settings_url(org) + "/update", data)
    assert response.status_code == 400
    assert b'class="error"' in response.content
    org.refresh_from_db()
    assert (org.on_leak, org.secret_max_lifetime_days) == ("revoke", None)


def test_admins_and_viewers_read_but_do_not_change(as_admin, as_viewer, org):
    for client in (as_admin, as_viewer):
        page = client.get(settings_url(org))
        assert page.status_code == 200 and b"Revoke the secret at once" in page.content
        assert b"Save settings" not in page.content
        response = client.post(settings_url(org) + "/update", {"on_leak": "notify"})
        assert response.status_code == 403
    org.refresh_from_db()
    assert org.on_leak == "revoke"


def test_another_organization_is_404(as_outsider, org):
    assert as_outsider.get(settings_url(org)).status_code == 404
    assert as_outsider.post(settings_url(org) + "/update", {"on_leak": "notify"}).status_code == 404


def test_the_client_page_shows_where_a_secret_leaked(as_owner, guide_client):
    secret_report_leak(
        actor=SYSTEM,
        token=guide_client.secret,
        url="https://github.com/octo/app/blob/abc/config.py",
        source="commit",
    )
    page = as_owner.get(client_url(guide_client)).content.decode()
    assert "was found in public" in page
    assert 'href="https://github.com/octo/app/blob/abc/config.py"' in page
    assert "(commit)" in page and "revoked at once" in page
    assert "status-leaked" in page


def test_a_scanner_url_is_never_a_script_link(as_owner, guide_client):
    secret_report_leak(actor=SYSTEM, token=guide_client.secret, url="javascript:alert(1)")
    page = as_owner.get(client_url(guide_client)).content.decode()
    assert 'href="javascript:' not in page and "javascript:alert(1)" in page


def test_notify_only_says_the_secret_still_works(as_owner, guide_client, org):
    org.on_leak = "notify"
    org.save()
    secret_report_leak(actor=SYSTEM, token=guide_client.secret, url="https://x.test/a")
    page = as_owner.get(client_url(guide_client)).content.decode()
    assert "it still works" in page


def test_the_client_page_shows_days_left_and_warns_before_expiry(as_owner, guide_client):
    soon, _ = secret_add(
        actor=SYSTEM,
        client=guide_client.client,
        expire_time=timezone.now() + timedelta(days=5, hours=-1),
    )
    later, _ = secret_add(
        actor=SYSTEM,
        client=guide_client.client,
        expire_time=timezone.now() + timedelta(days=40, hours=-1),
    )
    page = as_owner.get(client_url(guide_client)).content.decode()
    assert f'id="expiring-{soon.id}"' in page and "expires in 5 days" in page
    assert f'id="expiring-{later.id}"' not in page and "in 40 days" in page


def test_the_client_page_flags_an_unused_secret(as_owner, guide_client):
    old = timezone.now() - timedelta(days=120)
    ClientSecret.objects.filter(client=guide_client.client).update(
        create_time=old, last_used_time=old
    )
    page = as_owner.get(client_url(guide_client)).content.decode()
    assert "unused for 120 days" in page and "revoke it?" in page


def test_new_secrets_get_the_organization_lifetime_in_the_portal(as_owner, guide_client, org):
    org.secret_max_lifetime_days = 10
    org.save()
    as_owner.post(client_url(guide_client) + "/secrets/new")
    newest = (
        ClientSecret.objects.filter(client=guide_client.client).order_by("-create_time").first()
    )
    assert newest.expire_time is not None
    assert abs((newest.expire_time - timezone.now() - timedelta(days=10)).total_seconds()) < 60


def test_the_activity_log_shows_where_it_leaked(as_viewer, guide_client, org):
    secret_report_leak(
        actor=SYSTEM, token=guide_client.secret, url="https://gist.example/x", source="gist"
    )
    page = as_viewer.get(f"/orgs/{org.id}/audit").content.decode()
    assert "leaked at https://gist.example/x" in page and "revoked it" in page
