"""Hourly token counts for the staff dashboard, without a database write per token.

The token endpoint must not write on success, so each process counts issued and refused
token requests in memory, per hour, and adds its counts to ``clients.TokenStat`` at most
once a minute: the first request after the interval flushes (one small upsert per hour
bucket, normally one). Counts are kept per hour bucket in memory, so a flush that comes late
still lands in the right hour. A failed flush (database down) keeps the counts for the next
try, so the dashboard is late, never wrong by more than what a crashed worker held.

Prometheus counters (``oauth.metrics``) are totals since the process started; this table
answers "how many in the last 24 hours" across workers and restarts.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F

from oauth.models import TokenStat

FLUSH_SECONDS = 60.0


def _hour_of(epoch: float) -> int:
    return int(epoch // 3600 * 3600)


class TokenCounter:
    """Issued/failed counts per hour, flushed to the database every ``flush_seconds``."""

    def __init__(self, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._pending: dict[int, list[int]] = {}
        self._next_flush = time.monotonic() + flush_seconds

    def record_issued(self) -> None:
        """Count one issued token (no database access unless a flush is due)."""
        self._count(0)

    def record_failed(self) -> None:
        """Count one refused token request."""
        self._count(1)

    def _count(self, index: int) -> None:
        hour = _hour_of(time.time())
        with self._lock:
            self._pending.setdefault(hour, [0, 0])[index] += 1
            due = time.monotonic() >= self._next_flush
        if due:
            self.flush()

    def pending(self) -> dict[int, tuple[int, int]]:
        """The counts not yet written, ``{hour epoch: (issued, failed)}``."""
        with self._lock:
            return {hour: (c[0], c[1]) for hour, c in self._pending.items()}

    def reset(self) -> None:
        """Forget unwritten counts and start a fresh interval (tests)."""
        with self._lock:
            self._pending.clear()
            self._next_flush = time.monotonic() + self.flush_seconds

    def flush(self) -> int:
        """Add the pending counts to ``TokenStat``; returns how many hour rows were written."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._next_flush = time.monotonic() + self.flush_seconds
        written = 0
        try:
            for hour, (issued, failed) in sorted(pending.items()):
                _add(hour, issued, failed)
                written += 1
        except DatabaseError:
            # Keep what was not written for the next flush: counts are never double-added,
            # because each hour is removed from ``pending`` only by a successful write.
            with self._lock:
                for hour, (issued, failed) in sorted(pending.items())[written:]:
                    counts = self._pending.setdefault(hour, [0, 0])
                    counts[0] += issued
                    counts[1] += failed
        return written


def _add(hour_epoch: int, issued: int, failed: int) -> None:

    hour = datetime.fromtimestamp(hour_epoch, tz=UTC)
    # A savepoint: a failure here must not break a transaction the caller is in.
    with transaction.atomic():
        updated = TokenStat.objects.filter(hour=hour).update(
            issued=F("issued") + issued, failed=F("failed") + failed
        )
        if updated:
            return
        try:
            with transaction.atomic():
                TokenStat.objects.create(hour=hour, issued=issued, failed=failed)
        except IntegrityError:
            # Another worker created the hour's row first: add to it.
            TokenStat.objects.filter(hour=hour).update(
                issued=F("issued") + issued, failed=F("failed") + failed
            )


# The process-wide counter the token endpoint feeds (through oauth.metrics).
counter = TokenCounter()
record_issued = counter.record_issued
record_failed = counter.record_failed
flush = counter.flush
