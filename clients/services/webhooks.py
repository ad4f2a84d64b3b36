"""Webhook endpoints: register, change, rotate the signing secret, test, disable, retry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from clients import selectors, webhooks
from clients.models import (
    Organization,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from clients.services._common import check_model, delete_once
from clients.services.audit import Actor, audit_webhook_endpoint
from clients.services.outbox import enqueue

MAX_ENDPOINTS = 10
ENDPOINT_FIELDS = ("url", "event_types", "description", "enabled")


def _check(endpoint: WebhookEndpoint) -> None:
    errors: dict[str, list[str]] = {}
    problem = webhooks.url_errors(endpoint.url)
    if problem:
        errors["url"] = [problem]
    problem = webhooks.event_type_errors(endpoint.event_types)
    if problem:
        errors["event_types"] = [problem]
    if errors:
        raise ValidationError(errors)
    endpoint.event_types = sorted(set(endpoint.event_types))
    check_model(endpoint, exclude=["secret_encrypted", "url", "event_types"])


@transaction.atomic
def webhook_endpoint_create(
    *,
    actor: Actor,
    organization: Organization | None,
    url: str,
    event_types: list[str] | None = None,
    description: str = "",
    enabled: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint (``organization`` None: the provider's, which gets every event) and its
    signing secret, returned here only; it is stored encrypted."""
    count = WebhookEndpoint.objects.filter(organization=organization).count()
    if count >= MAX_ENDPOINTS:
        raise ValidationError(
            f"at most {MAX_ENDPOINTS} webhook endpoints; delete one first", code="limit"
        )
    plain = webhooks.new_signing_secret()
    endpoint = WebhookEndpoint(
        organization=organization,
        url=url,
        event_types=list(event_types or []),
        description=description,
        enabled=enabled,
        secret_encrypted=webhooks.encrypt_secret(plain),
    )
    _check(endpoint)
    endpoint.save()
    audit_webhook_endpoint(actor, "webhook_endpoint.create", endpoint)
    return endpoint, plain


@transaction.atomic
def webhook_endpoint_update(
    *, actor: Actor, endpoint: WebhookEndpoint, **changes: Any
) -> WebhookEndpoint:
    """Change an endpoint's URL, event types, description or enabled flag. Enabling it again
    clears its failure record (it had been disabled, perhaps for failing)."""
    unknown = set(changes) - set(ENDPOINT_FIELDS)
    if unknown:
        raise ValidationError({name: ["unknown field"] for name in sorted(unknown)})
    before = {name: getattr(endpoint, name) for name in changes}
    for name, value in changes.items():
        setattr(endpoint, name, value)
    if "event_types" in changes:
        endpoint.event_types = list(endpoint.event_types or [])
    _check(endpoint)
    if changes.get("enabled") is True and not before.get("enabled", True):
        endpoint.failing_since = None
        endpoint.disabled_reason = ""
    if changes.get("enabled") is False:
        endpoint.disabled_reason = "disabled by a person"
    endpoint.save()
    after = {name: getattr(endpoint, name) for name in changes}
    changed = {n: [before[n], after[n]] for n in sorted(changes) if before[n] != after[n]}
    if changed:
        details = {"changed": sorted(changed), "changes": changed}
        audit_webhook_endpoint(actor, "webhook_endpoint.update", endpoint, details=details)
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, actor: Actor, endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint, its delivery log and its pending deliveries' rows (their tasks find
    no endpoint and end)."""
    if delete_once(endpoint):
        audit_webhook_endpoint(actor, "webhook_endpoint.delete", endpoint)


@transaction.atomic
def webhook_endpoint_rotate_secret(*, actor: Actor, endpoint: WebhookEndpoint) -> str:
    """A new signing secret, returned once; the previous one keeps signing (a second
    signature) for 24 hours, so receivers switch without losing an event."""
    plain = webhooks.new_signing_secret()
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expire_time = timezone.now() + timedelta(
        seconds=webhooks.ROTATION_OVERLAP_SECONDS
    )
    endpoint.secret_encrypted = webhooks.encrypt_secret(plain)
    endpoint.save()
    audit_webhook_endpoint(actor, "webhook_endpoint.rotate_secret", endpoint)
    return plain


@transaction.atomic
def webhook_endpoint_test(*, actor: Actor, endpoint: WebhookEndpoint) -> WebhookEvent:
    """Send a ``webhook.test`` event to this endpoint only (even a disabled one: testing it is
    how one finds out whether it works again)."""
    event = WebhookEvent.objects.create(
        type=webhooks.TEST_EVENT_TYPE,
        organization_id=endpoint.organization_id or "",
        data={
            "webhook_endpoint_id": endpoint.id,
            "message": "A test event, sent on request.",
            "actor": {"type": actor.type, "id": actor.id},
        },
    )
    enqueue(webhooks.DELIVER_KIND, {"event_id": event.id, "endpoint_id": endpoint.id, "test": True})
    return event


@transaction.atomic
def webhook_delivery_retry(*, actor: Actor, delivery: WebhookDelivery) -> None:
    """Deliver a delivery's event again now ("retry now"), with the same ``webhook-id``."""
    enqueue(
        webhooks.DELIVER_KIND,
        {"event_id": delivery.event_id, "endpoint_id": delivery.endpoint_id, "manual": True},
    )


@transaction.atomic
def webhook_endpoint_disable(*, endpoint: WebhookEndpoint, reason: str, notify: bool) -> bool:
    """Disable an endpoint from the worker (410 Gone, or failing for 5 days); True when this
    call disabled it. The conditional update makes sure that of several workers one disables
    it and one e-mail goes to its owners (the organization's owners and admins, or the staff
    for the provider's endpoints)."""
    won = WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
        enabled=False, disabled_reason=reason[:200], update_time=timezone.now()
    )
    if not won:
        return False
    endpoint.enabled = False
    endpoint.disabled_reason = reason[:200]
    audit_webhook_endpoint(
        Actor.system("webhooks"), "webhook_endpoint.disable", endpoint, details={"reason": reason}
    )
    if notify:
        recipients = (
            selectors.owner_and_admin_emails(endpoint.organization)
            if endpoint.organization is not None
            else _staff_emails()
        )
        if recipients:
            enqueue(
                "email",
                {
                    "to": recipients,
                    "template": "portal/email/webhook_disabled",
                    "context": {"url": endpoint.url, "endpoint_id": endpoint.id, "reason": reason},
                },
            )
    return True


def _staff_emails() -> list[str]:
    emails = (
        get_user_model()
        .objects.filter(is_staff=True, is_active=True)
        .values_list("email", flat=True)
    )
    return sorted({e for e in emails if e})
