"""Webhooks end to end in one process: a real receiver over HTTP verifies every delivery with the
``standardwebhooks`` library; the worker (``manage.py run_webhook_worker --once``) delivers."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import psycopg
import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook

from clients import outbox, webhooks
from clients.models import (
    ApiClient,
    OutboxTask,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from clients.services import (
    Actor,
    client_create,
    client_delete,
    secret_add,
    secret_delete,
    webhook_delivery_retry,
    webhook_endpoint_create,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_test,
    webhook_endpoint_update,
)
from tests.conftest import member, run_worker
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests")


@pytest.fixture(autouse=True)
def _insecure(settings):
    settings.OUTBOUND_ALLOW_INSECURE = True


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def deliver() -> str:
    out = io.StringIO()
    call_command("run_webhook_worker", "--once", stdout=out)
    return out.getvalue()


def make_due() -> None:
    """Move the clock: every waiting delivery is due now (instead of waiting its back-off)."""
    OutboxTask.objects.filter(status="pending").update(next_attempt_at=timezone.now())


def endpoint_for(receiver: Receiver, organization=None, **kwargs) -> WebhookEndpoint:
    """An endpoint for ``receiver``; it wants client.created unless told otherwise."""
    kwargs.setdefault("event_types", ["client.created"])
    endpoint, secret = webhook_endpoint_create(
        actor=SYSTEM, organization=organization, url=receiver.url, **kwargs
    )
    receiver.secret = secret
    return endpoint


def test_a_scripted_scenario_arrives_verified_exactly_once_with_types_and_data(org, receiver):
    endpoint = endpoint_for(receiver, org, event_types=[])
    client, first_plain = client_create(actor=SYSTEM, organization=org, name="Billing sync")
    secret, plain = secret_add(actor=SYSTEM, client=client)
    secret_delete(actor=SYSTEM, secret=secret)
    client_delete(actor=SYSTEM, client=client)
    assert "0 failed" in deliver()
    assert all(r.verified for r in receiver.received)
    # Order is not promised; the endpoint's own creation comes first, then the scenario's (the
    # client's first secret is a secret.created of its own).
    scenario = [t for t in receiver.types() if not t.startswith("webhook_endpoint.")]
    assert sorted(scenario) == sorted(
        ["client.created", "secret.created", "secret.created", "secret.revoked", "client.deleted"]
    )
    by_type = {}
    for payload in receiver.ok():
        by_type.setdefault(payload["type"], []).append(payload)
    created = by_type["client.created"][0]
    assert created["data"]["client_id"] == client.id
    assert created["data"]["name"] == "Billing sync"
    assert created["data"]["organization_id"] == org.id
    assert created["id"].startswith("msg_") and created["timestamp"].endswith("Z")
    revoked = by_type["secret.revoked"][0]
    assert revoked["data"]["secret_id"] == secret.id
    assert revoked["data"]["secret_suffix"] == plain[-4:]
    assert by_type["client.deleted"][0]["data"]["client_id"] == client.id
    # Exactly once per successful delivery: one delivery per webhook-id.
    ids = [r.id for r in receiver.received]
    assert len(ids) == len(set(ids))
    # No body holds a plain secret (the client's first one, the added one, the signing secret).
    for text in receiver.bodies():
        for plain_value in (first_plain, plain, receiver.secret):
            assert plain_value not in text
        assert not re.search(r"whsec_", text)
    # Every attempt is recorded, and nothing is delivered twice.
    assert WebhookDelivery.objects.filter(endpoint=endpoint, status="succeeded").count() == len(ids)
    assert "0 done" in deliver()


def test_the_headers_follow_standard_webhooks(org, receiver):
    endpoint_for(receiver, org)
    client_create(actor=SYSTEM, organization=org, name="Headers")
    deliver()
    headers = receiver.received[0].headers
    assert re.fullmatch(r"msg_\d+", headers["webhook-id"])
    assert abs(int(headers["webhook-timestamp"]) - timezone.now().timestamp()) < 60
    assert re.fullmatch(r"v1,[A-Za-z0-9+/=]+", headers["webhook-signature"])
    assert headers["content-type"] == "application/json"


def test_an_organization_never_receives_another_organizations_events(org, other_org):
    mine, theirs, provider = Receiver().start(), Receiver().start(), Receiver().start()
    try:
        endpoint_for(mine, org)
        endpoint_for(theirs, other_org)
        endpoint_for(provider, None, event_types=[])
        client_create(actor=SYSTEM, organization=org, name="Acme's")
        client_create(actor=SYSTEM, organization=other_org, name="Globex's")
        deliver()
        assert [p["data"]["name"] for p in mine.ok()] == ["Acme's"]
        assert [p["data"]["name"] for p in theirs.ok()] == ["Globex's"]
        # The provider's endpoint gets every event (the endpoints' own creation too).
        names = {p["data"].get("name") for p in provider.ok()}
        assert {"Acme's", "Globex's"} <= names
    finally:
        for r in (mine, theirs, provider):
            r.stop()


def test_an_endpoint_gets_only_the_types_it_asked_for(org, receiver):
    endpoint_for(receiver, org, event_types=["client.deleted"])
    client, _ = client_create(actor=SYSTEM, organization=org, name="Typed")
    client_delete(actor=SYSTEM, client=client)
    deliver()
    assert receiver.types() == ["client.deleted"]


def test_a_disabled_endpoint_gets_nothing(org, receiver):
    endpoint = endpoint_for(receiver, org, enabled=False)
    client_create(actor=SYSTEM, organization=org, name="Quiet")
    deliver()
    assert receiver.received == []
    assert not WebhookEvent.objects.filter(type="client.created").exists()
    webhook_endpoint_update(actor=SYSTEM, endpoint=endpoint, enabled=True)
    client_create(actor=SYSTEM, organization=org, name="Loud")
    deliver()
    assert receiver.types() == ["client.created"]


def test_the_receiver_down_then_back_gets_every_event_in_retries(org):
    receiver = Receiver().start()
    port = receiver.server.server_address[1]
    endpoint_for(receiver, org)
    secret = receiver.secret
    receiver.stop()  # down
    for n in range(3):
        client_create(actor=SYSTEM, organization=org, name=f"While down {n}")
    assert "0 done, 3 failed" in deliver()
    assert WebhookDelivery.objects.filter(status="failed", response_code=None).count() == 3
    task = OutboxTask.objects.filter(kind=webhooks.DELIVER_KIND).first()
    wait = (task.next_attempt_at - timezone.now()).total_seconds()
    assert 3 < wait < 7  # the first retry comes after about 5 s
    make_due()
    deliver()  # still down: second attempt
    task.refresh_from_db()
    wait = (task.next_attempt_at - timezone.now()).total_seconds()
    assert 250 < wait < 350  # then about 5 minutes
    back = Receiver(secret=secret).start(port=port)
    try:
        make_due()
        assert "3 done, 0 failed" in deliver()
        assert sorted(p["data"]["name"] for p in back.ok()) == [f"While down {n}" for n in range(3)]
        attempts = WebhookDelivery.objects.filter(status="succeeded").values_list(
            "attempt", flat=True
        )
        assert set(attempts) == {3}
    finally:
        back.stop()


def test_the_retry_schedule_is_the_documented_one():
    assert webhooks.RETRY_SCHEDULE == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert outbox.max_attempts(webhooks.DELIVER_KIND) == 8
    for attempt, seconds in enumerate(webhooks.RETRY_SCHEDULE, start=1):
        wait = outbox.retry_wait(webhooks.DELIVER_KIND, attempt).total_seconds()
        assert seconds * 0.89 <= wait <= seconds * 1.11


def test_a_delivery_that_failed_every_attempt_is_dead_and_can_be_retried_now(org, receiver):
    endpoint = endpoint_for(receiver, org)
    receiver.default_status = 503
    client_create(actor=SYSTEM, organization=org, name="Doomed")
    for _ in range(8):
        make_due()
        deliver()
    task = OutboxTask.objects.get(kind=webhooks.DELIVER_KIND)
    assert (task.status, task.attempts) == ("dead", 8)
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 8
    receiver.default_status = 200
    delivery = WebhookDelivery.objects.filter(endpoint=endpoint).first()
    webhook_delivery_retry(actor=SYSTEM, delivery=delivery)
    deliver()
    assert receiver.types() == ["client.created"]
    # The same webhook-id as the failed attempts: receivers de-duplicate.
    assert len({r.id for r in receiver.received}) == 1
    last = WebhookDelivery.objects.filter(endpoint=endpoint).first()
    assert (last.attempt, last.status) == (9, "succeeded")


def test_410_gone_disables_the_endpoint(org, receiver):
    endpoint = endpoint_for(receiver, org)
    member("owner@acme.test", org, "owner")
    receiver.default_status = 410
    client_create(actor=SYSTEM, organization=org, name="Gone")
    deliver()
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "410" in endpoint.disabled_reason
    assert OutboxTask.objects.get(kind=webhooks.DELIVER_KIND).status == "done"


def test_an_endpoint_failing_for_five_days_is_disabled_with_one_email(org, receiver):
    endpoint = endpoint_for(receiver, org)
    member("owner@acme.test", org, "owner")
    member("admin@acme.test", org, "admin")
    member("viewer@acme.test", org, "viewer")
    receiver.default_status = 500
    for n in range(3):
        client_create(actor=SYSTEM, organization=org, name=f"Failing {n}")
    deliver()
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.failing_since is not None
    # Five days later (the clock moved), the next failures disable it.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        failing_since=timezone.now() - timedelta(days=5, seconds=1)
    )
    make_due()
    deliver()
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert endpoint.disabled_reason == "deliveries failed for 5 days"
    assert mail.outbox == []  # the webhook worker sends no mail: the mail worker does
    run_worker()  # the mail
    assert len(mail.outbox) == 1
    assert sorted(mail.outbox[0].to) == ["admin@acme.test", "owner@acme.test"]
    assert endpoint.url in mail.outbox[0].body
    # Nothing more is attempted, and no second mail.
    make_due()
    deliver()
    run_worker()
    assert len(mail.outbox) == 1
    assert not OutboxTask.objects.filter(kind=webhooks.DELIVER_KIND, status="pending").exists()


def test_a_change_that_fails_keeps_neither_change_nor_event(org, receiver):
    endpoint_for(receiver, org)
    before = (ApiClient.objects.count(), WebhookEvent.objects.count(), OutboxTask.objects.count())
    with pytest.raises(Exception), transaction.atomic():  # noqa: B017
        client_create(actor=SYSTEM, organization=org, name="Never")
        # The database refuses the rest of the transaction: a statement it cannot run.
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")
    after = (ApiClient.objects.count(), WebhookEvent.objects.count(), OutboxTask.objects.count())
    assert after == before
    deliver()
    assert receiver.received == []


def test_rotation_signs_with_both_secrets_for_a_day(org, receiver):
    endpoint = endpoint_for(receiver, org)
    old = receiver.secret
    new = webhook_endpoint_rotate_secret(actor=SYSTEM, endpoint=endpoint)
    assert new.startswith("whsec_") and new != old
    webhook_endpoint_test(actor=SYSTEM, endpoint=endpoint)
    deliver()
    # Both the old and the new secret verify (two signatures in the header).
    last = receiver.received[-1]
    assert len(last.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(last.body, last.headers)
    Webhook(new).verify(last.body, last.headers)
    # After the overlap, the new secret only.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        previous_secret_expire_time=timezone.now() - timedelta(seconds=1)
    )
    webhook_endpoint_test(actor=SYSTEM, endpoint=endpoint)
    deliver()
    assert len(receiver.received[-1].headers["webhook-signature"].split(" ")) == 1


def test_the_signing_secret_is_stored_encrypted(org, receiver):
    endpoint = endpoint_for(receiver, org)
    stored = WebhookEndpoint.objects.values_list("secret_encrypted", flat=True).get()
    assert receiver.secret not in stored and "whsec_" not in stored
    assert webhooks.decrypt_secret(endpoint.secret_encrypted) == receiver.secret


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example.com/x", "https"),
        ("https://10.0.0.5/hooks", "private"),
        ("https://169.254.169.254/latest", "metadata"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("not a url", "URL"),
        ("https://hooks.example.com/a b", "spaces"),
        ("https://intranet/hooks", "public host"),
    ],
)
def test_it_refuses_an_unsafe_url(org, settings, url, message):
    settings.OUTBOUND_ALLOW_INSECURE = False
    with pytest.raises(ValidationError) as raised:
        webhook_endpoint_create(actor=SYSTEM, organization=org, url=url)
    assert message in str(raised.value.message_dict["url"])
    assert not WebhookEndpoint.objects.exists()


def test_it_refuses_unknown_event_types(org):
    with pytest.raises(ValidationError) as raised:
        webhook_endpoint_create(
            actor=SYSTEM, organization=org, url="https://hooks.example.com/", event_types=["x.y"]
        )
    assert "x.y" in str(raised.value.message_dict["event_types"])


def test_a_test_event_reaches_a_disabled_endpoint_only(org, receiver):
    endpoint = endpoint_for(receiver, org, enabled=False)
    other = Receiver().start()
    try:
        endpoint_for(other, org)
        webhook_endpoint_test(actor=SYSTEM, endpoint=endpoint)
        deliver()
        assert [p["type"] for p in receiver.ok()] == ["webhook.test"]
        assert "webhook.test" not in other.types()
    finally:
        other.stop()


@pytest.mark.django_db(transaction=True)
def test_the_database_going_away_mid_change_keeps_neither_change_nor_event(org, receiver):
    """For real on PostgreSQL: the server ends our session after the change and its audit event
    were written, before the commit."""
    if connection.vendor != "postgresql":
        pytest.skip("needs a database server to take away")
    endpoint_for(receiver, org)
    params = connection.get_connection_params()
    before = (ApiClient.objects.count(), WebhookEvent.objects.count(), OutboxTask.objects.count())
    # B017: the driver's error on a dead connection.
    with pytest.raises(Exception), transaction.atomic():  # noqa: B017
        client_create(actor=SYSTEM, organization=org, name="Lost with the database")
        assert WebhookEvent.objects.filter(type="client.created").exists()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        with psycopg.connect(
            **{k: v for k, v in params.items() if k in ("host", "port", "user", "dbname")},
            password=params.get("password"),
            autocommit=True,
        ) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    connection.close()
    after = (ApiClient.objects.count(), WebhookEvent.objects.count(), OutboxTask.objects.count())
    assert after == before
    deliver()
    assert receiver.received == []


def test_purge_expired_forgets_events_after_30_days(org, receiver):
    endpoint_for(receiver, org)
    client_create(actor=SYSTEM, organization=org, name="Old news")
    client_create(actor=SYSTEM, organization=org, name="Recent")
    deliver()
    old = WebhookEvent.objects.get(data__name="Old news")
    WebhookEvent.objects.filter(pk=old.pk).update(timestamp=timezone.now() - timedelta(days=31))
    out = io.StringIO()
    call_command("purge_expired", stdout=out)
    assert "1 webhook events" in out.getvalue()
    assert list(WebhookEvent.objects.values_list("data__name", flat=True)) == ["Recent"]
    assert WebhookDelivery.objects.count() == 1


def test_a_redirect_is_not_followed_and_counts_as_a_failure(org, receiver):
    endpoint = endpoint_for(receiver, org)
    receiver.statuses = [307]
    client_create(actor=SYSTEM, organization=org, name="Redirected")
    assert "0 done, 1 failed" in deliver()
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.response_code) == ("failed", 307)
    assert len(receiver.received) == 1  # once, at the registered URL only


def test_a_receiver_slower_than_the_timeout_is_a_failure(org, receiver, monkeypatch):
    # The 10 s limit, shortened for the test: a setting of the module, not its code.
    monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 0.5)
    endpoint = endpoint_for(receiver, org)
    receiver.delay = 2
    client_create(actor=SYSTEM, organization=org, name="Slow")
    assert "0 done, 1 failed" in deliver()
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.response_code, delivery.error) == (
        "failed",
        None,
        "timed out",
    )
    assert delivery.duration_ms < 1500
