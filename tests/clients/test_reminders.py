"""``manage.py send_reminders``: 14 and 3 days before a secret expires, one mail to the
organization's owners and admins per secret per reminder, never more, however often it runs."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from clients.models import AuditEvent, ClientSecret, SecretReminder
from clients.services import secret_add, secret_reminders_send
from tests.conftest import SYSTEM, run_worker

pytestmark = pytest.mark.django_db


def send_reminders() -> str:
    out = io.StringIO()
    call_command("send_reminders", stdout=out)
    return out.getvalue()


def expiring(client, days: float) -> ClientSecret:
    secret, _ = secret_add(
        actor=SYSTEM, client=client, expire_time=timezone.now() + timedelta(days=days)
    )
    return secret


def test_one_mail_per_secret_per_reminder(guide_client, owner, admin, viewer):
    soon = expiring(guide_client.client, 13.5)  # the 14-day reminder is due
    expiring(guide_client.client, 30)  # nothing yet
    assert send_reminders().strip() == "1 reminder(s) enqueued"
    assert send_reminders().strip() == "0 reminder(s) enqueued"  # the second run: nothing
    run_worker()
    run_worker()
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sorted(sent.to) == ["admin@acme.test", "owner@acme.test"]
    assert "expires in 14 days" in sent.subject
    assert soon.secret_suffix in sent.body and guide_client.client.name in sent.body
    assert sent.alternatives and sent.alternatives[0][1] == "text/html"
    event = AuditEvent.objects.get(action="secret.expiry_reminder")
    assert event.target_id == soon.id and event.details["days_left"] == 14
    # Eleven days later, the 3-day reminder, once.
    later = timezone.now() + timedelta(days=11)
    assert secret_reminders_send(actor=SYSTEM, now=later) == 1
    assert secret_reminders_send(actor=SYSTEM, now=later) == 0
    run_worker()
    assert len(mail.outbox) == 2 and "expires in 3 days" in mail.outbox[1].subject
    assert sorted(SecretReminder.objects.values_list("days", flat=True)) == [3, 14]


def test_a_late_secret_gets_only_the_closest_reminder(guide_client, owner):
    expiring(guide_client.client, 2)
    send_reminders()
    run_worker()
    assert len(mail.outbox) == 1 and "expires in 2 days" in mail.outbox[0].subject
    assert list(SecretReminder.objects.values_list("days", flat=True)) == [3]


def test_no_reminder_for_inactive_leaked_expired_or_endless_secrets(guide_client, owner):
    inactive = expiring(guide_client.client, 5)
    ClientSecret.objects.filter(pk=inactive.pk).update(status="INACTIVE")
    leaked = expiring(guide_client.client, 5)
    ClientSecret.objects.filter(pk=leaked.pk).update(status="LEAKED")
    gone = expiring(guide_client.client, 5)
    ClientSecret.objects.filter(pk=gone.pk).update(expire_time=timezone.now() - timedelta(days=1))
    assert send_reminders().strip() == "0 reminder(s) enqueued"  # the guide's own never expires


def test_an_organization_without_owners_or_admins_is_audited_not_mailed(guide_client, viewer):
    expiring(guide_client.client, 3)
    assert secret_reminders_send(actor=SYSTEM) == 1
    run_worker()
    assert mail.outbox == []
    assert AuditEvent.objects.filter(action="secret.expiry_reminder").count() == 1


def test_the_reminder_days_are_a_setting(guide_client, owner, settings):
    settings.OAUTH = {**settings.OAUTH, "SECRET_REMINDER_DAYS": (30,)}
    expiring(guide_client.client, 20)
    assert secret_reminders_send(actor=SYSTEM) == 1
