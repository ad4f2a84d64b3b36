"""The outbox: tasks written with their change, claimed once, retried with backoff, dead after
eight attempts, their payload dropped when done; ``purge_expired`` forgets old done tasks."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from clients import outbox
from clients.models import OutboxTask
from clients.services import email_enqueue, enqueue
from tests.conftest import run_worker

pytestmark = pytest.mark.django_db

FAILURES: list[dict] = []


@outbox.handler("tests.always_fails")
def _always_fails(payload: dict) -> None:
    FAILURES.append(payload)
    raise ConnectionError("mail server said 451")


def test_a_task_is_written_with_its_change_and_rolled_back_with_it():
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue("email", {"to": ["a@x.test"]})
        raise RuntimeError("the change failed")
    assert not OutboxTask.objects.exists()
    with transaction.atomic():
        enqueue("email", {"to": ["a@x.test"]})
    assert OutboxTask.objects.get().status == "pending"


def test_a_mail_task_is_sent_by_the_worker_and_its_payload_dropped():
    email_enqueue(
        to=["ops@x.test"],
        template="portal/email/signup_existing",
        context={"email": "ops@x.test", "login_link": "L", "reset_link": "R"},
    )
    assert not mail.outbox
    assert "1 done, 0 failed" in run_worker()
    assert mail.outbox[0].to == ["ops@x.test"]
    assert mail.outbox[0].subject == "You already have a developer portal account"
    task = OutboxTask.objects.get()
    assert (task.status, task.payload, task.attempts) == ("done", {}, 1)
    assert "0 done" in run_worker()  # never twice


def test_a_failing_task_is_retried_later_with_backoff():
    enqueue("tests.always_fails", {"n": 1})
    assert "0 done, 1 failed" in run_worker()
    task = OutboxTask.objects.get()
    assert task.status == "pending" and task.attempts == 1
    assert task.last_error == "ConnectionError: mail server said 451"
    wait = task.next_attempt_at - timezone.now()
    assert timedelta(seconds=0) < wait <= timedelta(seconds=3)  # 2 s, jitter 0.5x to 1.5x
    assert "0 done, 0 failed" in run_worker()  # not due yet
    assert task.payload == {"n": 1}


def test_a_task_is_dead_after_eight_attempts():
    task = enqueue("tests.always_fails", {"n": 2})
    for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
        OutboxTask.objects.filter(pk=task.pk).update(next_attempt_at=timezone.now())
        run_worker()
        task.refresh_from_db()
        assert task.attempts == attempt
    assert task.status == "dead"
    OutboxTask.objects.filter(pk=task.pk).update(next_attempt_at=timezone.now())
    assert "0 done, 0 failed" in run_worker()  # a dead task is never run again


def test_an_unknown_kind_is_retried_not_dropped():
    enqueue("tests.from_a_newer_release", {})
    run_worker()
    task = OutboxTask.objects.get()
    assert task.status == "pending" and "no handler" in task.last_error


@pytest.mark.parametrize("attempts", [1, 3, 8, 20])
def test_backoff_grows_exponentially_with_jitter_and_a_cap(attempts):
    base = min(outbox.BACKOFF_MAX_SECONDS, outbox.BACKOFF_BASE_SECONDS**attempts)
    waits = {outbox.backoff(attempts).total_seconds() for _ in range(50)}
    assert all(0.5 * base <= w <= 1.5 * base for w in waits)
    assert len(waits) > 1  # jitter: failed tasks do not all come back at the same moment


def test_a_claimed_task_is_not_claimed_again_until_its_lease_ends():
    enqueue("email", {"to": ["a@x.test"]})
    [claimed] = outbox.claim()
    assert claimed.status == "running" and claimed.attempts == 1
    assert outbox.claim() == []
    later = timezone.now() + timedelta(seconds=outbox.LEASE_SECONDS + 1)
    [again] = outbox.claim(now=later)  # its worker died: another one takes it over
    assert again.pk == claimed.pk and again.attempts == 2


def test_a_handler_cannot_register_twice():
    with pytest.raises(ValueError, match="already has a handler"):
        outbox.handler("email")(lambda payload: None)


def test_purge_expired_forgets_old_done_tasks_and_keeps_the_rest():
    old = timezone.now() - timedelta(days=8)
    done_old = enqueue("email", {})
    done_new = enqueue("email", {})
    dead_old = enqueue("email", {})
    pending = enqueue("email", {})
    OutboxTask.objects.filter(pk__in=[done_old.pk, done_new.pk]).update(status="done")
    OutboxTask.objects.filter(pk=dead_old.pk).update(status="dead")
    OutboxTask.objects.filter(pk__in=[done_old.pk, dead_old.pk]).update(update_time=old)
    out = io.StringIO()
    call_command("purge_expired", stdout=out)
    assert "1 done tasks" in out.getvalue()
    left = set(OutboxTask.objects.values_list("pk", flat=True))
    assert left == {done_new.pk, dead_old.pk, pending.pk}


@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_worker_skips_the_rows_another_one_holds():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite claims by a conditional update")
    import threading

    held, release = threading.Event(), threading.Event()
    first = enqueue("email", {"n": 1})
    second = enqueue("email", {"n": 2})

    def other_worker() -> None:
        from django.db import connections

        with transaction.atomic():
            OutboxTask.objects.select_for_update().get(pk=first.pk)
            held.set()
            release.wait(30)
        connections.close_all()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert held.wait(30)
        assert [t.pk for t in outbox.claim()] == [second.pk]  # did not wait for the lock
    finally:
        release.set()
        thread.join()
    assert [t.pk for t in outbox.claim()] == [first.pk]
