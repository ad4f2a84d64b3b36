"""Leaked secrets: a secret scanner (GitHub's partner program, or any other through the
management API) reports a secret it found in public; we revoke it at once (or, for an
organization whose ``on_leak`` is ``notify``, only record it) and tell the owners and admins.

A report is idempotent: the same secret reported again changes nothing more and sends no
second mail (GitHub retries deliveries).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from clients.models import (
    ClientSecret,
    Organization,
    has_secret_prefix,
    secret_format_ok,
    secret_lookups,
)
from clients.selectors import owner_and_admin_emails, secret_find_by_lookup
from clients.services.audit import Actor, audit_secret
from clients.services.outbox import enqueue

TRUE_POSITIVE = "true_positive"
FALSE_POSITIVE = "false_positive"
MAX_URL = 2048
MAX_SOURCE = 64
MAX_TOKEN = 512


@dataclass(frozen=True)
class LeakResult:
    """What a report found: its label, and the secret when it is one of ours."""

    label: str
    secret_id: str | None = None


@transaction.atomic
def secret_report_leak(*, actor: Actor, token: str, url: str = "", source: str = "") -> LeakResult:
    """Handle one reported secret. A value that carries our prefix but is malformed or has a
    wrong checksum is a false positive without a query; one that we never issued (or deleted)
    is a false positive too, and changes nothing. A secret of the format before the checksum
    (no prefix) is looked up all the same: it is found once it has been used since
    (``oauth.token.authenticate`` stores its keyed lookup then)."""
    if not token or len(token) > MAX_TOKEN:
        return LeakResult(FALSE_POSITIVE)
    if has_secret_prefix(token) and not secret_format_ok(token):
        return LeakResult(FALSE_POSITIVE)
    secret = secret_find_by_lookup(secret_lookups(token))
    if secret is None:
        return LeakResult(FALSE_POSITIVE)
    organization = secret.client.organization
    revoke = organization is None or organization.on_leak == Organization.OnLeak.REVOKE
    first_report = secret.leak_time is None
    now = timezone.now()
    changes: dict[str, object] = {}
    if first_report:
        changes.update(leak_url=url[:MAX_URL], leak_source=source[:MAX_SOURCE], leak_time=now)
    if revoke and secret.status != ClientSecret.Status.LEAKED:
        changes["status"] = ClientSecret.Status.LEAKED
    if not changes:
        return LeakResult(TRUE_POSITIVE, secret.id)
    ClientSecret.objects.filter(pk=secret.pk).update(update_time=now, **changes)
    secret.refresh_from_db()
    revoked = secret.status == ClientSecret.Status.LEAKED
    audit_secret(
        actor,
        "secret.leak",
        secret,
        details={
            "url": secret.leak_url,
            "source": secret.leak_source,
            "on_leak": "revoke" if revoke else "notify",
            "revoked": revoked,
        },
    )
    if first_report and organization is not None:
        to = owner_and_admin_emails(organization)
        if to:
            # The worker builds the mail (clients.tasks.secret_leaked): the row names the
            # secret, never holds it.
            enqueue("secret.leaked", {"to": to, "secret_id": secret.id, "revoked": revoked})
    return LeakResult(TRUE_POSITIVE, secret.id)


def secrets_report_leak(
    *, actor: Actor, tokens: list[str], url: str = "", source: str = ""
) -> list[LeakResult]:
    """Several reported secrets, answered in their order (each in its own transaction)."""
    return [
        secret_report_leak(actor=actor, token=token, url=url, source=source) for token in tokens
    ]
