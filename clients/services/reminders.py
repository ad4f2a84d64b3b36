"""Expiry reminders: the owners and admins of an organization are mailed 14 and 3 days
(OAUTH["SECRET_REMINDER_DAYS"]) before one of its secrets expires; ``manage.py send_reminders``
(cron) runs this. One mail per secret per reminder, ever: a unique row (``SecretReminder``),
written in the same transaction as the mail's outbox task and the audit event, records each."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from clients.conf import client_settings
from clients.models import ClientSecret, SecretReminder
from clients.selectors import owner_and_admin_emails
from clients.services.audit import Actor, audit_secret
from clients.services.outbox import enqueue


def _due(left: timedelta, days: list[int]) -> int | None:
    """The reminder due for a secret with ``left`` to live: the closest one it has reached
    (at 2 days left, the 3-day one, not a late 14-day one as well)."""
    reached = [d for d in days if left <= timedelta(days=d)]
    return min(reached) if reached else None


def secret_reminders_send(*, actor: Actor, now: datetime | None = None) -> int:
    """Enqueue the reminders due now; how many were enqueued. Safe to run at any time and
    as often as wanted, on several machines at once."""
    now = now or timezone.now()
    days = sorted({int(d) for d in client_settings.SECRET_REMINDER_DAYS if int(d) > 0})
    if not days:
        return 0
    candidates = (
        ClientSecret.objects.filter(
            status=ClientSecret.Status.ACTIVE,
            expire_time__gt=now,
            expire_time__lte=now + timedelta(days=max(days)),
            client__organization__isnull=False,
        )
        .select_related("client", "client__organization")
        .order_by("expire_time", "id")
    )
    sent = 0
    for secret in candidates:
        left = secret.expire_time - now
        due = _due(left, days)
        if due is None:
            continue
        days_left = max(1, math.ceil(left.total_seconds() / 86400))
        if _remind(actor, secret, due, days_left):
            sent += 1
    return sent


@transaction.atomic
def _remind(actor: Actor, secret: ClientSecret, due: int, days_left: int) -> bool:
    try:
        with transaction.atomic():
            SecretReminder.objects.create(secret=secret, days=due)
    except IntegrityError:
        return False  # sent before (or by a concurrent run)
    audit_secret(
        actor, "secret.expiry_reminder", secret, details={"days_left": days_left, "reminder": due}
    )
    to = owner_and_admin_emails(secret.client.organization)
    if to:
        enqueue("secret.expiring", {"to": to, "secret_id": secret.id, "days_left": days_left})
    return True
