"""Token quota alerts: the 80 % and 100 % e-mails, once per quota window."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from clients import selectors
from clients.models import ApiClient, Organization, QuotaAlert
from clients.services.audit import Actor, QuotaAction, audit_record
from clients.services.outbox import email_enqueue

THRESHOLDS = (80, 100)


def quota_alert(
    *,
    subject_type: str,
    subject_id: str,
    window: str,
    window_start: datetime,
    threshold: int,
    limit: int,
    mode: str,
    used: int,
) -> bool:
    """Tell the organization's owners and admins that a client or the organization passed
    ``threshold`` % of a token quota in the window that began at ``window_start``.

    Once per (subject, window, threshold) across every process: the alert's unique row, its
    audit event (``quota.warn`` at 80, ``quota.exceed`` at 100) and the outbox e-mail are one
    transaction, and a second caller's insert fails. False when it was sent already (or the
    subject is gone)."""
    if subject_type == "client":
        client = ApiClient.objects.select_related("organization").filter(pk=subject_id).first()
        organization = client.organization if client is not None else None
    else:
        client = None
        organization = Organization.objects.filter(pk=subject_id).first()
    if organization is None:
        return False
    try:
        with transaction.atomic():
            QuotaAlert.objects.create(
                subject_type=subject_type,
                subject_id=subject_id,
                window=window,
                window_start=window_start,
                threshold=threshold,
            )
            action: QuotaAction = "quota.exceed" if threshold >= 100 else "quota.warn"
            details: dict[str, Any] = {
                "window": window,
                "limit": limit,
                "mode": mode,
                "threshold": threshold,
                "used": used,
                "window_start": window_start.isoformat(),
            }
            audit_record(
                actor=Actor.system("token quota"),
                action=action,
                target_type=subject_type,
                target_id=subject_id,
                organization_id=organization.id,
                client_id=client.id if client is not None else "",
                details=details,
            )
            recipients = selectors.owner_and_admin_emails(organization)
            if recipients:
                email_enqueue(
                    to=recipients,
                    template="portal/email/quota_alert",
                    context={
                        "organization_name": organization.display_name,
                        "organization_id": organization.id,
                        "client_name": client.name if client is not None else "",
                        "client_id": client.id if client is not None else "",
                        **details,
                    },
                )
    except IntegrityError:
        return False
    return True
