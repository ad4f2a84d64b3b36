"""Webhooks in the staff console: add (secret shown once, never cached), edit through the
service, test event, rotate, retry a delivery; every change audited with the staff actor."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from clients.models import AuditEvent, OutboxTask, WebhookDelivery, WebhookEndpoint
from clients.webhooks import decrypt_secret

pytestmark = pytest.mark.django_db

ADD = "/admin/clients/webhookendpoint/add/"


def change_url(endpoint: WebhookEndpoint) -> str:
    return reverse("admin:clients_webhookendpoint_change", args=[quote(endpoint.pk)])


def test_staff_add_a_provider_endpoint_and_see_its_secret_once(admin_client):
    response = admin_client.post(
        ADD,
        {"url": "https://hooks.provider.example/all", "description": "SIEM", "enabled": "on"},
    )
    assert response.status_code == 200, response.content[:2000]
    assert "no-store" in response["Cache-Control"]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.organization is None and endpoint.event_types == []
    secret = decrypt_secret(endpoint.secret_encrypted)
    assert secret in response.content.decode()
    page = admin_client.get(change_url(endpoint))
    assert page.status_code == 200 and secret not in page.content.decode()
    event = AuditEvent.objects.get(action="webhook_endpoint.create")
    assert event.actor_display == "root"


def test_an_unsafe_url_is_refused_on_the_form(admin_client):
    response = admin_client.post(ADD, {"url": "https://192.168.1.1/", "enabled": "on"})
    assert response.status_code == 302  # back to the form, with the service's message
    assert not WebhookEndpoint.objects.exists()


def test_staff_edit_test_rotate_and_retry(admin_client, org):
    admin_client.post(ADD, {"organization": org.id, "url": "https://hooks.acme.example/in"})
    endpoint = WebhookEndpoint.objects.get()
    change = change_url(endpoint)
    response = admin_client.post(
        change,
        {
            "url": "https://hooks.acme.example/v2",
            "event_types": ["client.created"],
            "description": "",
            "deliveries-TOTAL_FORMS": "0",
            "deliveries-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.event_types, endpoint.enabled) == (
        "https://hooks.acme.example/v2",
        ["client.created"],
        False,
    )
    changelist = "/admin/clients/webhookendpoint/"
    admin_client.post(changelist, {"action": "send_test_event", "_selected_action": [endpoint.id]})
    assert OutboxTask.objects.filter(kind="webhook.deliver", payload__test=True).count() == 1
    rotated = admin_client.post(
        changelist, {"action": "rotate_secret", "_selected_action": [endpoint.id]}
    )
    endpoint.refresh_from_db()
    assert decrypt_secret(endpoint.secret_encrypted) in rotated.content.decode()
    assert "no-store" in rotated["Cache-Control"]
    event_id = OutboxTask.objects.get(payload__test=True).payload["event_id"]
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event_id=event_id, attempt=1, status="failed"
    )
    admin_client.post(
        "/admin/clients/webhookdelivery/",
        {"action": "retry_now", "_selected_action": [delivery.id]},
    )
    assert OutboxTask.objects.filter(payload__manual=True, payload__event_id=event_id).exists()
    delete = reverse("admin:clients_webhookendpoint_delete", args=[quote(endpoint.pk)])
    admin_client.post(delete, {"post": "yes"})
    assert not WebhookEndpoint.objects.exists()
    assert AuditEvent.objects.filter(action="webhook_endpoint.delete").exists()
