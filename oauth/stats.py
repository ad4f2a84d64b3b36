"""Hourly token counts for the staff dashboard, without a database write per token.

The token endpoint must not write on success, so each process counts issued and refused
token requests in memory, per hour, and adds its counts to ``clients.TokenStat`` at most
once a minute: the first request after the interval flushes (one small upsert per hour
bucket, normally one). Counts are kept per hour bucket in memory, so a flush that comes late
still lands in the right hour. A failed flush (database down) keeps the counts for the next
try, so the dashboard is late, never wrong by more than what a crashed worker held.

Prometheus counters (``oauth.metrics``) are totals since the process started; this table
answers "how many in the last 24 hours" across workers and restarts.

The same flush adds per-client counts to ``oauth.TokenUsage`` (per client, hour and reason:
``""`` for an issued token, else the refusal's error code or ``quota_exceeded``), which the
usage pages, the management API and the quotas without Redis read. A refusal that names a
client is counted against it only if the client exists (resolved at flush time, one query),
so made-up client ids cannot fill the table. ``now()`` is the clock of both modules, which
tests move (``set_clock``) rather than sleep an hour.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F

from clients.models import ApiClient
from oauth.models import TokenStat, TokenUsage
from oauth.settings import oauth_settings

FLUSH_SECONDS = 60.0

_clock: Callable[[], float] = time.time


def now() -> float:
    """The wall clock of the counts and quota windows (epoch seconds)."""
    return _clock()


def set_clock(clock: Callable[[], float] | None) -> None:
    """Replace the clock (tests move it across hour and day boundaries); None: the real one."""
    global _clock
    _clock = clock or time.time


# (hour epoch, client id, organization id or None when not yet known, reason) -> count
UsageKey = tuple[int, str, str | None, str]


def _hour_of(epoch: float) -> int:
    return int(epoch // 3600 * 3600)


class TokenCounter:
    """Issued/failed counts per hour, flushed to the database every ``flush_seconds``."""

    def __init__(self, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._pending: dict[int, list[int]] = {}
        self._usage: dict[UsageKey, int] = {}
        self._next_flush = time.monotonic() + flush_seconds

    def record_issued(
        self, client_id: str | None = None, organization_id: str | None = None
    ) -> None:
        """Count one issued token (no database access unless a flush is due)."""
        self._count(0, client_id, organization_id, "")

    def record_failed(
        self,
        reason: str = "",
        client_id: str | None = None,
        organization_id: str | None = None,
    ) -> None:
        """Count one refused token request (against its client, when it names one)."""
        self._count(1, client_id, organization_id, reason or "refused")

    def _count(
        self, index: int, client_id: str | None, organization_id: str | None, reason: str
    ) -> None:
        hour = _hour_of(now())
        with self._lock:
            self._pending.setdefault(hour, [0, 0])[index] += 1
            if client_id:
                key = (hour, client_id, organization_id, reason)
                self._usage[key] = self._usage.get(key, 0) + 1
            due = time.monotonic() >= self._next_flush
        if due:
            self.flush()

    def pending(self) -> dict[int, tuple[int, int]]:
        """The counts not yet written, ``{hour epoch: (issued, failed)}``."""
        with self._lock:
            return {hour: (c[0], c[1]) for hour, c in self._pending.items()}

    def pending_usage(self, client_id: str, since_epoch: int) -> int:
        """Tokens issued to ``client_id`` counted here and not yet written, since an hour."""
        with self._lock:
            return sum(
                n
                for (hour, cid, _org, reason), n in self._usage.items()
                if cid == client_id and not reason and hour >= since_epoch
            )

    def pending_organization_usage(self, organization_id: str, since_epoch: int) -> int:
        """Tokens issued in an organization counted here and not yet written, since an hour."""
        with self._lock:
            return sum(
                n
                for (hour, _cid, org, reason), n in self._usage.items()
                if org == organization_id and not reason and hour >= since_epoch
            )

    def reset(self) -> None:
        """Forget unwritten counts and start a fresh interval (tests)."""
        with self._lock:
            self._pending.clear()
            self._usage.clear()
            self._next_flush = time.monotonic() + self.flush_seconds

    def flush(self) -> int:
        """Add the pending counts to ``TokenStat``; returns how many hour rows were written."""
        with self._lock:
            pending, self._pending = self._pending, {}
            usage, self._usage = self._usage, {}
            self._next_flush = time.monotonic() + self.flush_seconds
        try:
            _add_usage(usage)
        except DatabaseError:
            # The database is down (or the connection dead): keep everything for the next
            # flush, and do not try the hourly totals on the same connection now.
            with self._lock:
                for key, n in usage.items():
                    self._usage[key] = self._usage.get(key, 0) + n
                for hour, (issued, failed) in pending.items():
                    counts = self._pending.setdefault(hour, [0, 0])
                    counts[0] += issued
                    counts[1] += failed
            return 0
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


def _add_usage(usage: dict[UsageKey, int]) -> None:
    """Add per-client counts to ``TokenUsage``, all or nothing (one transaction)."""
    if not usage:
        return
    unknown = {cid for (_h, cid, org, _r) in usage if org is None}
    organizations: dict[str, str] = {}
    if unknown:
        organizations = {
            cid: org or ""
            for cid, org in ApiClient.objects.filter(id__in=unknown).values_list(
                "id", "organization_id"
            )
        }
    rows: dict[tuple[int, str, str], list] = {}
    for (hour, cid, org, reason), n in usage.items():
        if org is None:
            if cid not in organizations:
                continue  # not a client of ours: counted in TokenStat only
            org = organizations[cid]
        row = rows.setdefault((hour, cid, reason), [org, 0])
        row[1] += n
    with transaction.atomic():
        for (hour_epoch, cid, reason), (org, n) in sorted(rows.items()):
            hour = datetime.fromtimestamp(hour_epoch, tz=UTC)
            match = TokenUsage.objects.filter(hour=hour, client_id=cid, reason=reason)
            if match.update(count=F("count") + n):
                continue
            try:
                with transaction.atomic():
                    TokenUsage.objects.create(
                        hour=hour, client_id=cid, organization_id=org, reason=reason, count=n
                    )
            except IntegrityError:
                match.update(count=F("count") + n)


def purge_usage(before: datetime | None = None) -> int:
    """Delete the per-client counts older than TOKEN_USAGE_RETENTION_DAYS; how many rows."""
    if before is None:
        days = oauth_settings.TOKEN_USAGE_RETENTION_DAYS
        before = datetime.fromtimestamp(now(), tz=UTC) - timedelta(days=days)
    deleted, _ = TokenUsage.objects.filter(hour__lt=before).delete()
    return deleted


# The process-wide counter the token endpoint feeds (through oauth.metrics).
counter = TokenCounter()
record_issued = counter.record_issued
record_failed = counter.record_failed
flush = counter.flush
