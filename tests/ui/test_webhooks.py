"""The portal's Webhooks page: owners and admins manage, viewers read, outsiders get 404; the
signing secret is shown once, never cached; every action goes through the services."""

from __future__ import annotations

import pytest

from clients.models import AuditEvent, OutboxTask, WebhookEndpoint
from clients.services import Actor, webhook_endpoint_create
from clients.webhooks import decrypt_secret
from tests.conftest import post_form

pytestmark = pytest.mark.django_db

URL = "https://hooks.example.com/m2m"


@pytest.fixture
def endpoint(org) -> WebhookEndpoint:
    made, _secret = webhook_endpoint_create(
        actor=Actor.system("tests"), organization=org, url=URL, description="CRM"
    )
    return made


def test_an_owner_adds_an_endpoint_and_sees_its_secret_once(as_owner, org):
    response = post_form(
        as_owner,
        f"/orgs/{org.id}/webhooks",
        {"url": URL, "event_types": ["client.created", "secret.revoked"], "enabled": "on"},
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    endpoint = WebhookEndpoint.objects.get()
    secret = decrypt_secret(endpoint.secret_encrypted)
    assert secret in response.content.decode()
    assert endpoint.event_types == ["client.created", "secret.revoked"] and endpoint.enabled
    assert AuditEvent.objects.filter(action="webhook_endpoint.create").exists()
    for page in (f"/orgs/{org.id}/webhooks", f"/orgs/{org.id}/webhooks/{endpoint.id}"):
        shown = as_owner.get(page)
        assert shown.status_code == 200 and secret not in shown.content.decode()


def test_a_bad_url_is_shown_on_the_form(as_owner, org):
    response = post_form(as_owner, f"/orgs/{org.id}/webhooks", {"url": "http://10.0.0.1/x"})
    assert response.status_code == 400
    assert "https://" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_an_admin_edits_disables_rotates_tests_and_deletes(as_admin, org, endpoint):
    page = f"/orgs/{org.id}/webhooks/{endpoint.id}"
    response = post_form(as_admin, page, {"url": URL, "description": "Tickets"})  # not enabled
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.description, endpoint.enabled) == ("Tickets", False)
    rotated = post_form(as_admin, f"{page}/rotate", {})
    assert rotated.status_code == 200 and rotated["Cache-Control"] == "no-store"
    endpoint.refresh_from_db()
    assert decrypt_secret(endpoint.secret_encrypted) in rotated.content.decode()
    assert post_form(as_admin, f"{page}/test", {}).status_code == 302
    assert OutboxTask.objects.filter(kind="webhook.deliver", payload__test=True).exists()
    assert post_form(as_admin, f"{page}/delete", {}).status_code == 302
    assert not WebhookEndpoint.objects.exists()


def test_a_viewer_reads_but_changes_nothing(as_viewer, org, endpoint):
    page = f"/orgs/{org.id}/webhooks/{endpoint.id}"
    shown = as_viewer.get(page)
    assert shown.status_code == 200 and '/test"' not in shown.content.decode()
    assert as_viewer.get(f"/orgs/{org.id}/webhooks").status_code == 200
    for path in (page, f"{page}/rotate", f"{page}/test", f"{page}/delete"):
        assert post_form(as_viewer, path, {"url": URL}).status_code == 403
    assert post_form(as_viewer, f"/orgs/{org.id}/webhooks", {"url": URL}).status_code == 403
    assert WebhookEndpoint.objects.count() == 1


def test_an_outsider_gets_404_everywhere(as_outsider, other_org, org, endpoint):
    page = f"/orgs/{org.id}/webhooks/{endpoint.id}"
    assert as_outsider.get(f"/orgs/{org.id}/webhooks").status_code == 404
    assert as_outsider.get(page).status_code == 404
    # Nor through their own organization's address.
    assert as_outsider.get(f"/orgs/{other_org.id}/webhooks/{endpoint.id}").status_code == 404
    for path in (f"{page}/rotate", f"{page}/test", f"{page}/delete"):
        assert post_form(as_outsider, path, {}).status_code == 404
    retry = f"/orgs/{other_org.id}/webhooks/{endpoint.id}/deliveries/whd_1/retry"
    assert post_form(as_outsider, retry, {}).status_code == 404
