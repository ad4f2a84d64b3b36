"""The outbox: background work by kind, each kind run by the one handler registered for it.

A change that needs work done after it (send an e-mail, call a webhook, warn about a leaked
secret) writes an ``OutboxTask`` in its own transaction (``clients.services.enqueue``); the
worker (``manage.py run_worker``, ``portal/serving/worker.py``) claims due tasks, runs their
handler and records the outcome here. At least once: a worker that dies mid-task leaves the task
``running`` with a lease (``next_attempt_at``), and another worker claims it when the lease ends,
so a handler must tolerate running twice.

A kind is registered by name::

    @outbox.handler("email")
    def send(payload: dict) -> None: ...

A handler raises to ask for a retry; after ``MAX_ATTEMPTS`` the task is ``dead`` (kept for the
staff to read, with the last error's class and message, never its payload's secrets).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from clients.models import OutboxTask

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# Retry n waits about 2**n seconds (0.5x to 1.5x, so failed tasks do not retry in lockstep),
# at most an hour: the eighth attempt comes some four minutes after the first.
BACKOFF_BASE_SECONDS = 2
BACKOFF_MAX_SECONDS = 3600
# How long a claimed task belongs to its worker; past it another worker may run it again
# (``settings.OUTBOX_LEASE_SECONDS``, this by default).
LEASE_SECONDS = 300
MAX_ERROR_LENGTH = 500

Handler = Callable[..., None]
_handlers: dict[str, Handler] = {}
# Kinds whose handler also gets the task (its attempt number): ``handler(kind, with_task=True)``.
_with_task: set[str] = set()
# Kinds with a retry schedule of their own: the waits after the 1st, 2nd… failure; one failure
# more than the schedule is long and the task is dead.
_schedules: dict[str, tuple[float, ...]] = {}
SCHEDULE_JITTER = 0.1


def handler(
    kind: str, *, retry_schedule: tuple[float, ...] | None = None, with_task: bool = False
) -> Callable[[Handler], Handler]:
    """Register ``function`` as the handler of ``kind`` (one handler per kind).

    ``retry_schedule`` (seconds) replaces the default exponential backoff for this kind;
    ``with_task`` passes the claimed ``OutboxTask`` as a second argument."""

    def register(function: Handler) -> Handler:
        existing = _handlers.get(kind)
        if existing is not None and existing is not function:
            raise ValueError(f"outbox kind {kind!r} already has a handler: {existing!r}")
        _handlers[kind] = function
        if retry_schedule is not None:
            _schedules[kind] = tuple(retry_schedule)
        if with_task:
            _with_task.add(kind)
        return function

    return register


def registered_kinds() -> list[str]:
    return sorted(_handlers)


def backoff(attempts: int) -> timedelta:
    """The wait before the next attempt of a task that failed ``attempts`` times, with jitter."""
    seconds = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS**attempts)
    return timedelta(seconds=seconds * random.uniform(0.5, 1.5))


def lease_seconds() -> int:
    return int(getattr(settings, "OUTBOX_LEASE_SECONDS", LEASE_SECONDS))


def max_attempts(kind: str) -> int:
    """How many attempts a task of ``kind`` gets."""
    schedule = _schedules.get(kind)
    return MAX_ATTEMPTS if schedule is None else len(schedule) + 1


def retry_wait(kind: str, attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failure of a task of ``kind``, with jitter."""
    schedule = _schedules.get(kind)
    if schedule is None:
        return backoff(attempts)
    seconds = schedule[min(attempts, len(schedule)) - 1]
    return timedelta(seconds=seconds * random.uniform(1 - SCHEDULE_JITTER, 1 + SCHEDULE_JITTER))


def claim(
    limit: int = 10, now: datetime | None = None, kinds: list[str] | None = None
) -> list[OutboxTask]:
    """Claim up to ``limit`` due tasks for this worker, counting the attempt and taking a lease.

    On PostgreSQL the candidates are read ``FOR UPDATE SKIP LOCKED``, so workers on several
    machines never wait for one another nor claim the same row; SQLite has no row locks (Django
    leaves the clause out), and there the conditional update below is what keeps a task to one
    claimant: it changes the row only if nobody claimed it since it was read.
    """
    now = now or timezone.now()
    due = OutboxTask.objects.filter(
        status__in=[OutboxTask.Status.PENDING, OutboxTask.Status.RUNNING],
        next_attempt_at__lte=now,
    ).order_by("next_attempt_at", "id")
    if kinds is not None:  # a worker limited to some kinds (``run_webhook_worker``)
        due = due.filter(kind__in=kinds)
    claimed = []
    with transaction.atomic():
        for task in due.select_for_update(skip_locked=True)[:limit]:
            won = OutboxTask.objects.filter(pk=task.pk, attempts=task.attempts).update(
                status=OutboxTask.Status.RUNNING,
                attempts=F("attempts") + 1,
                next_attempt_at=now + timedelta(seconds=lease_seconds()),
                update_time=now,
            )
            if won:
                task.status = OutboxTask.Status.RUNNING
                task.attempts += 1
                claimed.append(task)
    return claimed


def run(task: OutboxTask) -> bool:
    """Run one claimed task's handler and record the outcome; True when it is done."""
    try:
        function = _handlers.get(task.kind)
        if function is None:  # perhaps a newer release registers it: retry, then give up
            raise LookupError(f"no handler for outbox kind {task.kind!r}")
        if task.kind in _with_task:
            function(task.payload, task)
        else:
            function(task.payload)
    except Exception as exc:
        _failed(task, exc)
        return False
    # Done: the payload (addresses, ids) is no longer needed, so it is not kept.
    OutboxTask.objects.filter(pk=task.pk).update(
        status=OutboxTask.Status.DONE, payload={}, last_error="", update_time=timezone.now()
    )
    return True


def _failed(task: OutboxTask, exc: Exception) -> None:
    # The class and message only: a handler's exception names what failed (an SMTP answer, a
    # status code), and the payload it was given stays out of the log and the row.
    error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
    now = timezone.now()
    limit = max_attempts(task.kind)
    dead = task.attempts >= limit
    OutboxTask.objects.filter(pk=task.pk).update(
        status=OutboxTask.Status.DEAD if dead else OutboxTask.Status.PENDING,
        next_attempt_at=now if dead else now + retry_wait(task.kind, task.attempts),
        last_error=error,
        update_time=now,
    )
    logger.warning(
        "outbox task %s (%s) failed, attempt %d of %d%s: %s",
        task.pk,
        task.kind,
        task.attempts,
        limit,
        "; giving up" if dead else "",
        error,
    )


def oldest_pending_age(now: datetime | None = None) -> float:
    """Seconds since the oldest task still waiting to run was written (0 when none waits)."""
    now = now or timezone.now()
    oldest = (
        OutboxTask.objects.filter(status__in=[OutboxTask.Status.PENDING, OutboxTask.Status.RUNNING])
        .order_by("create_time")
        .values_list("create_time", flat=True)
        .first()
    )
    return max(0.0, (now - oldest).total_seconds()) if oldest else 0.0


def purge_done(older_than: timedelta = timedelta(days=7)) -> int:
    """Delete tasks done more than ``older_than`` ago (dead ones stay for the staff to read)."""
    cutoff = timezone.now() - older_than
    deleted, _ = OutboxTask.objects.filter(
        status=OutboxTask.Status.DONE, update_time__lt=cutoff
    ).delete()
    return deleted
