"""Rate limits and lockout, counted in a store that every server process shares.

Fixed windows: a limit ``N/m`` allows N events per key in each clock-aligned minute; the
count lives in Redis when ``settings.REDIS_URL`` is set (INCR and EXPIRE in one MULTI), else in
the ``clients_ratelimitcounter`` table (one atomic ``INSERT … ON CONFLICT DO UPDATE count =
count + 1``). Never in process memory: two gunicorn workers must see the same count.

What is counted (settings, each ``N/s``, ``N/m`` or ``N/h``):

- ``RATE_LIMIT_TOKEN_FAILURES``: failed client authentications at the token endpoint per
  client_id (known or not, so a lockout says nothing about whether a client exists);
- ``RATE_LIMIT_TOKEN_FAILURES_PER_IP``: the same per source address;
- ``RATE_LIMIT_LOGIN_FAILURES``: portal login failures per account, and ten times that per
  address;
- ``RATE_LIMIT_API``: management API requests per management client.

A successful token request never writes here, and one whose secret this process verified
recently (the argon2 cache in ``oauth.token.authenticate``) does not read either: only a request
that would run argon2 asks first whether its client_id or address is locked (one read, next to a
hash that costs tens of milliseconds). A store that cannot be reached fails open (logged): the
limiter must not take the front door down with it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import random
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from oauth.models import RateLimitCounter
from portal.lib.env import Rate, parse_rate

logger = logging.getLogger(__name__)

# Per address, login failures may be this many times the per-account limit (a shared NAT).
LOGIN_ADDRESS_FACTOR = 10
_CLEANUP_ONE_IN = 64


def rate_setting(name: str) -> Rate:
    return parse_rate(getattr(settings, name), name)


@dataclass(frozen=True)
class Counter:
    """One thing being counted: ``scope`` (what) and ``ident`` (whose), under ``rate``."""

    scope: str
    ident: str
    rate: Rate

    def window(self, now: float) -> int:
        return int(now // self.rate.period)

    def key(self, now: float) -> str:
        # Hashed: identifiers are caller-controlled (a client_id, a username, an address).
        digest = hashlib.sha256(self.ident.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        return f"rl:{self.scope}:{self.rate.period}:{digest}:{self.window(now)}"

    def retry_after(self, now: float) -> int:
        """Whole seconds until this counter's window closes (at least 1)."""
        end = (self.window(now) + 1) * self.rate.period
        return max(1, math.ceil(end - now))


class RateLimited(Exception):
    """A limit is exhausted; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int, scope: str) -> None:
        super().__init__(f"rate limited ({scope}); retry after {retry_after} s")
        self.retry_after = retry_after
        self.scope = scope


# --- Stores --------------------------------------------------------------------------------------


@functools.cache
def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def _store_counts(keys: list[tuple[str, int, int]], increment: bool) -> list[int]:
    """Counts for ``(key, window, ttl seconds)``; incremented first when ``increment``."""
    if settings.REDIS_URL:
        client = _redis(settings.REDIS_URL)
        if not increment:
            return [int(v or 0) for v in client.mget([k for k, _, _ in keys])]
        pipe = client.pipeline(transaction=True)
        for key, _, ttl in keys:
            pipe.incr(key)
            pipe.expire(key, ttl)
        results = pipe.execute()
        return [int(v) for v in results[0::2]]
    return _database_counts(keys, increment)


def _database_counts(keys: list[tuple[str, int, int]], increment: bool) -> list[int]:
    from django.db import connection

    table = RateLimitCounter._meta.db_table
    now = int(time.time())
    with connection.cursor() as cursor:
        if not increment:
            cursor.execute(
                f"SELECT key, count FROM {table} WHERE key IN ({', '.join(['%s'] * len(keys))})",  # noqa: S608
                [k for k, _, _ in keys],
            )
            found = dict(cursor.fetchall())
            return [int(found.get(k, 0)) for k, _, _ in keys]
        counts = []
        for key, window, ttl in keys:
            # One statement, atomic on PostgreSQL and SQLite (>= 3.35): no read-modify-write race.
            cursor.execute(
                f"INSERT INTO {table} (key, window_start, count, expires) "  # noqa: S608
                f"VALUES (%s, %s, 1, %s) ON CONFLICT (key) "
                f"DO UPDATE SET count = {table}.count + 1 RETURNING count",
                [key, window, now + ttl],
            )
            counts.append(int(cursor.fetchone()[0]))
        if random.randrange(_CLEANUP_ONE_IN) == 0:
            cursor.execute(f"DELETE FROM {table} WHERE expires < %s", [now])  # noqa: S608
        return counts


def _counts(counters: list[Counter], now: float, increment: bool) -> list[int] | None:
    keys = [(c.key(now), c.window(now), c.rate.period + 1) for c in counters]
    try:
        return _store_counts(keys, increment)
    except Exception:  # the store is down: fail open, the request still gets its answer
        logger.warning("rate-limit store unavailable; not counting", exc_info=True)
        return None


# --- Operations ----------------------------------------------------------------------------------


def check(counters: list[Counter], now: float | None = None) -> None:
    """Raise RateLimited when any counter has already reached its limit (reads, never writes)."""
    now = time.time() if now is None else now
    counts = _counts(counters, now, increment=False)
    if counts is None:
        return
    _raise_over(counters, counts, now, limit_reached=True)


def hit(counters: list[Counter], now: float | None = None) -> list[int]:
    """Count one event on each counter; the new counts (empty when the store is down)."""
    now = time.time() if now is None else now
    return _counts(counters, now, increment=True) or []


def hit_and_check(counters: list[Counter], now: float | None = None) -> None:
    """Count one event; raise RateLimited when that event went past a limit."""
    now = time.time() if now is None else now
    counts = _counts(counters, now, increment=True)
    if counts is None:
        return
    _raise_over(counters, counts, now, limit_reached=False)


def _raise_over(
    counters: list[Counter], counts: list[int], now: float, limit_reached: bool
) -> None:
    over = [
        c
        for c, n in zip(counters, counts, strict=True)
        if (n >= c.rate.limit if limit_reached else n > c.rate.limit)
    ]
    if over:
        worst = max(over, key=lambda c: c.retry_after(now))
        raise RateLimited(worst.retry_after(now), worst.scope)


# --- The counters of each door ------------------------------------------------------------------


def token_failure_counters(client_id: str | None, ip: str | None) -> list[Counter]:
    counters = []
    if client_id:
        counters.append(
            Counter("token-client", client_id[:256], rate_setting("RATE_LIMIT_TOKEN_FAILURES"))
        )
    if ip:
        counters.append(Counter("token-ip", ip, rate_setting("RATE_LIMIT_TOKEN_FAILURES_PER_IP")))
    return counters


def login_failure_counters(username: str, ip: str | None) -> list[Counter]:
    rate = rate_setting("RATE_LIMIT_LOGIN_FAILURES")
    counters = [Counter("login-account", username.strip().lower()[:256], rate)]
    if ip:
        counters.append(Counter("login-ip", ip, rate.times(LOGIN_ADDRESS_FACTOR)))
    return counters


def api_counters(client_id: str) -> list[Counter]:
    return [Counter("api", client_id, rate_setting("RATE_LIMIT_API"))]
