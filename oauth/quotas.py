"""Token quotas: tokens per hour and per day, per client and per organization.

``take(client)`` runs on the token path after the request is known to be valid and before the
token is signed. It counts the token against every quota the client is under (its own, set by
its organization's owners and admins, and its organization's caps, set by the provider) and
answers the ``RateLimit-Policy`` and ``RateLimit`` header fields of the token answer
(draft-ietf-httpapi-ratelimit-headers-10 syntax: structured-field lists, ``"name";q=;w=`` and
``"name";r=;t=``); past an enforced quota it raises a 429 ``temporarily_unavailable`` with
``Retry-After`` to the end of the window. A quota in ``observe`` mode counts and warns, never
refuses. Windows are clock-aligned UTC hours and days.

Where the counts live:

- with ``REDIS_URL``: one round trip per token (one script that increments each quota
  window's key and gives a new key its expiry), shared by every server process, exact;
- without: each process reads the organization's and the client's issued counts of the window
  from ``TokenUsage`` (at most once a minute per subject) and adds what it issued since. Tokens
  that other processes issued and have not flushed yet (up to a minute's) and issued since this
  process read (up to another minute) are not seen: with N processes, a client can go over a
  quota by up to what the other N-1 processes issue it in two minutes.

The quota columns come with the client in the token query (``oauth.token.lookup``): no query
of its own on the token path. The 80 % and 100 % alerts (``clients.services.quota_alert``) are
claimed once per window in the database; each process remembers what it sent, so that write
happens at most once per process, quota, window and threshold.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Sum

from clients import services
from oauth import metrics, ratelimit, stats
from oauth.models import TokenUsage
from oauth.token.request import OAuthError

logger = logging.getLogger(__name__)

WINDOWS = (("hour", 3600), ("day", 86400))
THRESHOLDS = (80, 100)
DB_REFRESH_SECONDS = 60.0


@dataclass(frozen=True)
class Quota:
    """One subject's quota: a client's (``client``) or its organization's (``organization``)."""

    subject_type: str
    subject_id: str
    per_hour: int | None
    per_day: int | None
    mode: str

    def limits(self) -> list[tuple[str, int, int]]:
        """(window, limit, seconds) of each window that has a quota."""
        out = []
        for (window, seconds), limit in zip(WINDOWS, (self.per_hour, self.per_day), strict=True):
            if limit is not None:
                out.append((window, limit, seconds))
        return out


def quotas_of(
    client_id: str, organization_id: str | None, columns: tuple[Any, ...]
) -> tuple[Quota, ...]:
    """The quotas a client is under, from its quota columns and its organization's (none: ())."""
    client_quota, organization_quota = columns[:3], columns[3:6]
    found = []
    if client_quota[0] is not None or client_quota[1] is not None:
        found.append(Quota("client", client_id, client_quota[0], client_quota[1], client_quota[2]))
    if organization_id and (organization_quota[0] is not None or organization_quota[1] is not None):
        found.append(
            Quota(
                "organization",
                organization_id,
                organization_quota[0],
                organization_quota[1],
                organization_quota[2],
            )
        )
    return tuple(found)


def _policy_name(quota: Quota, window: str) -> str:
    return window if quota.subject_type == "client" else f"organization-{window}"


# One command per token whatever the number of quota windows: INCR each key, and give a new
# key its expiry (the end of its window, plus a minute).
_INCR_LUA = """
local out = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, ARGV[i]) end
  out[i] = n
end
return out
"""


@functools.cache
def _incr_script(url: str) -> Any:
    return ratelimit.redis_client(url).register_script(_INCR_LUA)


def _counts_redis(keys: list[tuple[str, int]]) -> list[int]:
    answer = _incr_script(settings.REDIS_URL)(
        keys=[key for key, _ttl in keys], args=[ttl for _key, ttl in keys]
    )
    return [int(n) for n in answer]


class _LocalCounts:
    """The database fallback: per (subject, window start), the count read from ``TokenUsage``
    and what this process issued since."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str, int], list[float]] = {}  # -> [count, read at]

    def peek(self, quota: Quota, start: int, end: int) -> int:
        key = (quota.subject_type, quota.subject_id, start)
        with self._lock:
            entry = self._seen.get(key)
        if entry is None or time.monotonic() - entry[1] >= DB_REFRESH_SECONDS:
            return self._read(quota, start, end)
        return int(entry[0])

    def take(self, quota: Quota, start: int, end: int) -> int:
        key = (quota.subject_type, quota.subject_id, start)
        with self._lock:
            entry = self._seen.get(key)
        if entry is None or time.monotonic() - entry[1] >= DB_REFRESH_SECONDS:
            entry = [float(self._read(quota, start, end)), time.monotonic()]
        entry[0] += 1
        with self._lock:
            if len(self._seen) > 10000:
                self._seen.clear()
            self._seen[key] = entry
        return int(entry[0])

    @staticmethod
    def _read(quota: Quota, start: int, end: int) -> int:
        field = "client_id" if quota.subject_type == "client" else "organization_id"
        rows = TokenUsage.objects.filter(
            **{field: quota.subject_id},
            reason="",
            hour__gte=datetime.fromtimestamp(start, tz=UTC),
            hour__lt=datetime.fromtimestamp(end, tz=UTC),
        )
        stored = rows.aggregate(n=Sum("count"))["n"] or 0
        if quota.subject_type == "client":
            unflushed = stats.counter.pending_usage(quota.subject_id, start)
        else:
            unflushed = stats.counter.pending_organization_usage(quota.subject_id, start)
        return stored + unflushed

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()


_local = _LocalCounts()
_alerted: set[tuple[str, str, str, int, int]] = set()
_alerted_lock = threading.Lock()


def reset() -> None:
    """Forget this process's fallback counts and sent alerts (tests)."""
    _local.reset()
    with _alerted_lock:
        _alerted.clear()


def take(
    client_id: str, organization_id: str | None, columns: tuple[Any, ...], count: bool = True
) -> dict[str, str]:
    """Count one token of a client against its quotas (``columns``: the client's per hour, per
    day and mode, then its organization's); the header fields of the answer, or a 429.

    ``count=False``: only read, for the header fields of a refusal of an authenticated client
    (``invalid_scope``…): nothing is counted, no alert, no 429."""
    quotas = quotas_of(client_id, organization_id, columns)
    if not quotas:
        return {}
    now = stats.now()
    plan = []  # (quota, window, limit, seconds, start)
    for quota in quotas:
        for window, limit, seconds in quota.limits():
            start = int(now // seconds * seconds)
            plan.append((quota, window, limit, seconds, start))
    try:
        if settings.REDIS_URL and not count:
            keys = [
                f"quota:{q.subject_type}:{q.subject_id}:{w}:{start}" for q, w, _l, _s, start in plan
            ]
            redis = ratelimit.redis_client(settings.REDIS_URL)
            counts = [int(n or 0) for n in redis.mget(keys)]
        elif not count:
            counts = [_local.peek(q, start, start + seconds) for q, _w, _l, seconds, start in plan]
        elif settings.REDIS_URL:
            counts = _counts_redis(
                [
                    (
                        f"quota:{q.subject_type}:{q.subject_id}:{window}:{start}",
                        int(start + seconds - now) + 60,
                    )
                    for q, window, _limit, seconds, start in plan
                ]
            )
        else:
            counts = [_local.take(q, start, start + seconds) for q, _w, _l, seconds, start in plan]
    except Exception as exc:  # a quota store that cannot be reached fails open, as ratelimit
        logger.warning("token quota: store unavailable, not counted: %s", type(exc).__name__)
        return {}
    policies, states, refusal = [], [], None
    for (quota, window, limit, seconds, start), used in zip(plan, counts, strict=True):
        name = _policy_name(quota, window)
        reset_in = max(1, math.ceil(start + seconds - now))
        policies.append(f'"{name}";q={limit};w={seconds}')
        states.append(f'"{name}";r={max(0, limit - used)};t={reset_in}')
        if not count:
            continue
        for threshold in THRESHOLDS:
            if used >= math.ceil(limit * threshold / 100):
                _alert(quota, window, start, threshold, limit, used)
        over = used > limit and quota.mode == "enforce"
        if over and (refusal is None or reset_in > refusal[2]):
            refusal = (quota, window, reset_in, limit)
    headers = {"RateLimit-Policy": ", ".join(policies), "RateLimit": ", ".join(states)}
    if refusal is not None:
        quota, window, reset_in, limit = refusal
        whose = "this client's" if quota.subject_type == "client" else "the organization's"
        metrics.record_quota_refusal(organization_id or "")
        raise OAuthError(
            "temporarily_unavailable",
            f"token quota exceeded: {whose} quota of {limit} tokens per {window}; "
            "cache tokens until they expire",
            429,
            {**headers, "Retry-After": str(reset_in)},
            count_as="quota_exceeded",
        )
    return headers


def _alert(quota: Quota, window: str, start: int, threshold: int, limit: int, used: int) -> None:
    key = (quota.subject_type, quota.subject_id, window, start, threshold)
    with _alerted_lock:
        if key in _alerted:
            return
        if len(_alerted) > 10000:  # past windows' keys: the QuotaAlert rows still say "sent"
            _alerted.clear()
        _alerted.add(key)
    try:
        services.quota_alert(
            subject_type=quota.subject_type,
            subject_id=quota.subject_id,
            window=window,
            window_start=datetime.fromtimestamp(start, tz=UTC),
            threshold=threshold,
            limit=limit,
            mode=quota.mode,
            used=used,
        )
    except DatabaseError:
        with _alerted_lock:
            _alerted.discard(key)  # try again with a later token
