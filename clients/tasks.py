"""The domain's outbox handlers: the mails of accounts and invitations, and plain mails.

They run in the worker (``manage.py run_worker``), never in a request: whether an address has
an account changes what is sent here, not what the request answered or how long it took. Links
with a token are made here, at sending time, so no usable link waits in the outbox table.
``ClientsConfig.ready`` imports this module, which registers the kinds.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from clients import outbox, services, webhooks
from clients.models import (
    ClientSecret,
    Invitation,
    OutboxTask,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    invitation_token,
    signup_token,
)
from portal.lib import mail, outbound


def _days(seconds: int) -> int:
    return max(1, seconds // 86400)


@outbox.handler("email")
def email(payload: dict[str, Any]) -> None:
    """A plain notification mail: ``to``, ``template`` and its JSON ``context``."""
    mail.send(list(payload["to"]), payload["template"], dict(payload.get("context", {})))


@outbox.handler("account.password_reset")
def password_reset(payload: dict[str, Any]) -> None:
    """A reset link to each active account of the address (usually one; none is no error)."""
    for user in PasswordResetForm().get_users(payload["email"]):
        path = reverse(
            "portal:password-reset-confirm",
            kwargs={
                "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                "token": default_token_generator.make_token(user),
            },
        )
        context = {"email": user.email, "link": mail.link(path)}
        mail.send([user.email], "portal/email/password_reset", context)


@outbox.handler("account.signup")
def signup(payload: dict[str, Any]) -> None:
    """The confirmation link of a pending sign-up, or "you already have an account"."""
    email = payload["email"]
    user = get_user_model().objects.filter(username__iexact=email).first()
    if user is None:  # deleted meanwhile
        return
    if not user.is_active and user.last_login is None:
        token = signup_token(user, payload["organization_name"])
        context = {
            "email": user.email,
            "organization_name": payload["organization_name"],
            "link": mail.link(reverse("portal:signup-confirm", args=[token])),
            "days": _days(settings.PORTAL_SIGNUP_CONFIRM_MAX_AGE),
        }
        mail.send([user.email], "portal/email/signup_confirm", context)
        return
    context = {
        "email": user.email,
        "login_link": mail.link(reverse("portal:login")),
        "reset_link": mail.link(reverse("portal:password-reset")),
    }
    mail.send([user.email], "portal/email/signup_existing", context)


@outbox.handler("invitation.email")
def invitation(payload: dict[str, Any]) -> None:
    """An invitation's link, unless it was used or withdrawn meanwhile."""
    found = (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(pk=payload["invitation_id"], accepted_time__isnull=True)
        .first()
    )
    if found is None:
        return
    context = {
        "invited_by": found.invited_by.get_username() if found.invited_by else "Someone",
        "organization_name": found.organization.display_name,
        "role": found.get_role_display(),
        "link": mail.link(reverse("portal:invitation", args=[invitation_token(found)])),
        "days": _days(settings.PORTAL_INVITATION_MAX_AGE),
    }
    mail.send([found.email], "portal/email/invitation", context)


def _secret_context(secret: ClientSecret) -> dict[str, Any]:
    client = secret.client
    return {
        "client_name": client.name,
        "client_id": client.id,
        "organization_name": client.organization.display_name if client.organization else "",
        "secret_suffix": secret.secret_suffix,
        "secret_id": secret.id,
        "link": mail.link(
            reverse("portal:client-detail", args=[client.organization_id, client.id])
        ),
    }


def _secret_of(payload: dict[str, Any]) -> ClientSecret | None:
    """The secret a mail is about, with its client and organization; None once deleted."""
    return (
        ClientSecret.objects.select_related("client", "client__organization")
        .filter(pk=payload["secret_id"])
        .first()
    )


@outbox.handler("secret.leaked")
def secret_leaked(payload: dict[str, Any]) -> None:
    """Tell the owners and admins that a secret was found in public: where, whether it was
    revoked, and how to rotate. Nothing when the secret was deleted meanwhile."""
    secret = _secret_of(payload)
    if secret is None:
        return
    context = {
        **_secret_context(secret),
        "url": secret.leak_url,
        "source": secret.leak_source,
        "revoked": bool(payload.get("revoked")),
    }
    mail.send(list(payload["to"]), "portal/email/secret_leaked", context)


@outbox.handler("secret.expiring")
def secret_expiring(payload: dict[str, Any]) -> None:
    """Remind the owners and admins that a secret expires soon (clients.services.reminders)."""
    secret = _secret_of(payload)
    if secret is None:
        return
    context = {
        **_secret_context(secret),
        "days_left": payload["days_left"],
        "expire_time": secret.expire_time,
    }
    mail.send(list(payload["to"]), "portal/email/secret_expiring", context)


# --- Webhooks ------------------------------------------------------------------------------------


class WebhookFailed(Exception):
    """The receiver did not answer 2xx: retried on the webhook schedule."""


@outbox.handler(webhooks.DELIVER_KIND, retry_schedule=webhooks.RETRY_SCHEDULE, with_task=True)
def webhook_deliver(payload: dict[str, Any], task: OutboxTask) -> None:
    """POST one event to one endpoint, signed, and record the attempt.

    2xx: delivered. 410 Gone: the receiver asks us to stop, the endpoint is disabled. Anything
    else (or no answer within 10 s): retried on ``webhooks.RETRY_SCHEDULE``; an endpoint that
    has failed for 5 days is disabled and its owners e-mailed once. The ``webhook-id`` is the
    event's id on every attempt, so a receiver de-duplicates a delivery made twice (a worker
    killed after the POST and before recording it)."""
    endpoint = WebhookEndpoint.objects.filter(pk=payload["endpoint_id"]).first()
    event = WebhookEvent.objects.filter(pk=payload["event_id"]).first()
    if endpoint is None or event is None:
        return  # deleted meanwhile
    if not endpoint.enabled and not payload.get("test") and not payload.get("manual"):
        return
    body = webhooks.body(event)
    now = timezone.now()
    headers = webhooks.signed_headers(endpoint, event.id, body, now)
    started = time.monotonic()
    code: int | None = None
    error = ""
    try:
        response = outbound.post(
            endpoint.url, body, headers=headers, timeout=webhooks.TIMEOUT_SECONDS
        )
        code = response.status
    except outbound.OutboundRefused as exc:
        error = str(exc)[:200]
    duration_ms = int((time.monotonic() - started) * 1000)
    ok = code is not None and 200 <= code < 300
    # The task's attempt, or after a "retry now" (a task of its own) the next after those made.
    previous = WebhookDelivery.objects.filter(endpoint=endpoint, event=event).count()
    WebhookDelivery.objects.create(
        endpoint=endpoint,
        event=event,
        attempt=max(task.attempts, previous + 1),
        status=WebhookDelivery.Status.SUCCEEDED if ok else WebhookDelivery.Status.FAILED,
        response_code=code,
        duration_ms=duration_ms,
        error=error,
    )
    outcome = "success" if ok else ("gone" if code == 410 else "failure")
    webhooks.WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
    if ok:
        if endpoint.failing_since is not None:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
        return
    if code == 410:
        services.webhook_endpoint_disable(
            endpoint=endpoint, reason="the receiver answered 410 Gone", notify=True
        )
        return
    if endpoint.failing_since is None:
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(
            failing_since=now
        )
    elif now - endpoint.failing_since >= timedelta(seconds=webhooks.DISABLE_AFTER_SECONDS):
        services.webhook_endpoint_disable(
            endpoint=endpoint, reason="deliveries failed for 5 days", notify=True
        )
        return
    raise WebhookFailed(f"HTTP {code}" if code is not None else error or "no answer")
