"""Rate limits and lockout, counted in a store that every server process shares.

The API (what a door calls; the portal login, the admin login, the token endpoint and the
management API all use it):

- ``acquire(counters)`` asks for one slot on every counter and takes them all, or none, in one
  atomic step (one Lua script in Redis, one transaction of conditional upserts in the
  database): it raises ``RateLimited`` (with ``retry_after``) when any counter is full, and
  otherwise returns a ``Reservation``. Call it *before* the work the limit protects (argon2, a
  password check), so parallel attempts cannot all pass a check and count afterwards.
- ``release(reservation)`` gives the slots back when the attempt succeeded: a limit on
  failures then counts failures only. A counter made with ``kept=True`` (the argon2 budget of
  an address) keeps its slot: it counts work done, whatever the outcome.
- ``check(counters)`` only reads (raises ``RateLimited`` when a next attempt would be refused);
  ``hit(counters)`` only counts (a failure noticed without a reservation).

Counting: two windows, a sliding approximation. A limit ``N/m`` keeps a count per clock-aligned
minute; an attempt is allowed while ``previous * (1 - elapsed fraction of this minute) + current
+ 1 <= N``, so a burst straddling a window boundary cannot get twice the limit, as it could with
fixed windows. The counts live in Redis when ``settings.REDIS_URL`` is set, else in the
``clients_ratelimitcounter`` table; never in process memory (two gunicorn workers must see the
same count). Addresses are counted by ``portal.lib.net.address_bucket``: an IPv6 client owns its
whole /64, so it counts as one.

What is counted (settings, each ``N/s``, ``N/m`` or ``N/h``):

- ``RATE_LIMIT_TOKEN_FAILURES``: failed client authentications at the token endpoint per
  (client_id, address). Never per client_id alone: anyone who knows a client_id could otherwise
  lock its owner out;
- ``RATE_LIMIT_TOKEN_FAILURES_PER_IP``: failed client authentications per address (also the
  requests without usable credentials, which name no client to count against);
- ``RATE_LIMIT_ARGON2_PER_IP``: argon2 verifications per address, right secret or wrong;
- ``RATE_LIMIT_LOGIN_FAILURES``: portal login failures per account, and ten times that per
  address (``login_failure_counters``);
- ``RATE_LIMIT_API``: management API requests per management client.

A successful token request whose secret this process verified recently (the argon2 cache in
``oauth.token.authenticate``) does no rate-limit I/O at all; any other one reserves before
argon2 and releases after. A store that cannot be reached fails open (logged): the limiter must
not take the front door down with it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from oauth.models import RateLimitCounter
from portal.lib.env import Rate, parse_rate
from portal.lib.net import address_bucket

logger = logging.getLogger(__name__)

# Per address, login failures may be this many times the per-account limit (a shared NAT).
LOGIN_ADDRESS_FACTOR = 10
_CLEANUP_ONE_IN = 64
# Float slack for "estimate + 1 <= limit": the previous window's weight is a fraction.
_EPSILON = 1e-9


def rate_setting(name: str) -> Rate:
    return parse_rate(getattr(settings, name), name)


@dataclass(frozen=True)
class Counter:
    """One thing being counted: ``scope`` (what) and ``ident`` (whose), under ``rate``.

    ``kept``: a reservation on this counter is not given back by ``release`` (it counts work,
    not failures)."""

    scope: str
    ident: str
    rate: Rate
    kept: bool = False

    def window(self, now: float) -> int:
        return int(now // self.rate.period)

    def key(self, now: float, back: int = 0) -> str:
        """The store key of the window holding ``now`` (``back`` = 1: the window before it)."""
        # Hashed: identifiers are caller-controlled (a client_id, a username, an address).
        digest = hashlib.sha256(self.ident.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        return f"rl:{self.scope}:{self.rate.period}:{digest}:{self.window(now) - back}"

    def previous_weight(self, now: float) -> float:
        """How much of the previous window still counts: 1 at this window's start, 0 at its end."""
        return 1.0 - (now % self.rate.period) / self.rate.period

    def ttl(self) -> int:
        # A window's count is read during the next window too.
        return 2 * self.rate.period + 1

    def allows(self, previous: int, current: int, now: float) -> bool:
        estimate = previous * self.previous_weight(now) + current
        return estimate + 1 <= self.rate.limit + _EPSILON

    def retry_after(self, previous: int, current: int, now: float) -> int:
        """Whole seconds until one more attempt would be allowed (at least 1)."""
        period, limit = self.rate.period, self.rate.limit
        left_in_window = (1.0 - (now % period) / period) * period
        if current + 1 <= limit and previous > 0:
            # Within this window, as the previous one's weight fades.
            wait = left_in_window - period * (limit - 1 - current) / previous
        else:
            # This window alone is full: into the next one, as this one's weight fades there.
            wait = left_in_window + period * max(0.0, 1.0 - (limit - 1) / current)
        return max(1, math.ceil(wait - _EPSILON))


@dataclass
class Reservation:
    """Slots taken by ``acquire``: the store keys to give back on success."""

    keys: list[str] = field(default_factory=list)


class RateLimited(Exception):
    """A limit is exhausted; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int, scope: str) -> None:
        super().__init__(f"rate limited ({scope}); retry after {retry_after} s")
        self.retry_after = retry_after
        self.scope = scope


# --- Redis ---------------------------------------------------------------------------------------

# KEYS: per counter, its current window's key then its previous window's key.
# ARGV[1]: "1" to reserve (take a slot on every counter, or none if one is full), "0" to count.
# ARGV[2 + 3(i-1) ...]: per counter, its limit (+ slack), the previous window's weight, a TTL.
# Returns {taken (1/0), current_1, previous_1, current_2, previous_2, ...} (counts before).
_ACQUIRE_LUA = """
local n = #KEYS / 2
local counts = {}
local taken = 1
for i = 1, n do
  local current = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local previous = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  counts[2 * i - 1] = current
  counts[2 * i] = previous
  local limit = tonumber(ARGV[3 * i - 1])
  local weight = tonumber(ARGV[3 * i])
  if ARGV[1] == '1' and previous * weight + current + 1 > limit then
    taken = 0
  end
end
if taken == 1 then
  for i = 1, n do
    redis.call('INCR', KEYS[2 * i - 1])
    redis.call('EXPIRE', KEYS[2 * i - 1], tonumber(ARGV[3 * i + 1]))
  end
end
local answer = {taken}
for i = 1, 2 * n do answer[i + 1] = counts[i] end
return answer
"""

# Give a slot back, never below zero (nor bring back a key that expired meanwhile).
_RELEASE_LUA = """
for i = 1, #KEYS do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count > 0 then redis.call('DECR', KEYS[i]) end
end
return 0
"""


@functools.cache
def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


@functools.cache
def redis_client(url: str) -> Any:
    """One Redis client (and its connection pool) per URL for this process; also the replay
    store's (``oauth.replay``)."""
    return _redis(url)


@functools.cache
def _script(url: str, source: str) -> Any:
    return _redis(url).register_script(source)


def _redis_acquire(
    counters: list[Counter], now: float, reserve: bool
) -> tuple[bool, list[tuple[int, int]]]:
    keys, args = [], ["1" if reserve else "0"]
    for counter in counters:
        keys += [counter.key(now), counter.key(now, back=1)]
        args += [
            repr(counter.rate.limit + _EPSILON),
            repr(counter.previous_weight(now)),
            str(counter.ttl()),
        ]
    answer = _script(settings.REDIS_URL, _ACQUIRE_LUA)(keys=keys, args=args)
    counts = [(int(answer[i]), int(answer[i + 1])) for i in range(1, len(answer), 2)]
    return bool(answer[0]), counts


# --- The database --------------------------------------------------------------------------------


class _Full(Exception):
    """One counter refused: roll the others' increments back."""


def _table() -> str:
    return RateLimitCounter._meta.db_table


def _database_counts(counters: list[Counter], now: float) -> list[tuple[int, int]]:
    """(current, previous) counts of each counter."""
    keys = [(c.key(now), c.key(now, back=1)) for c in counters]
    wanted = [k for pair in keys for k in pair]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT key, count FROM {_table()} WHERE key IN ({', '.join(['%s'] * len(wanted))})",  # noqa: S608
            wanted,
        )
        found = dict(cursor.fetchall())
    return [(int(found.get(cur, 0)), int(found.get(prev, 0))) for cur, prev in keys]


def _database_acquire(
    counters: list[Counter], now: float, reserve: bool
) -> tuple[bool, list[tuple[int, int]]]:
    table = _table()
    previous = f"COALESCE((SELECT p.count FROM {table} p WHERE p.key = %s), 0)"  # noqa: S608
    # One statement per counter, atomic on PostgreSQL and SQLite (>= 3.35): the row is locked
    # by the upsert and the condition is evaluated on its latest version, so parallel
    # attempts cannot all pass a check and count afterwards. A full counter returns no row.
    sql = (
        f"INSERT INTO {table} (key, window_start, count, expires) "
        f"SELECT %s, %s, 1, %s WHERE %s * {previous} + 1 <= %s "
        f"ON CONFLICT (key) DO UPDATE SET count = {table}.count + 1 "
        f"WHERE %s * {previous} + {table}.count + 1 <= %s RETURNING count"
    )
    stamp = int(now)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for counter in counters:
                key, before = counter.key(now), counter.key(now, back=1)
                weight = counter.previous_weight(now) if reserve else 0.0
                # Counting only (``hit``): a limit no count reaches.
                limit = float(counter.rate.limit) + _EPSILON if reserve else 1e300
                condition = [weight, before, limit]
                row = [key, counter.window(now), stamp + counter.ttl()]
                cursor.execute(sql, [*row, *condition, *condition])
                if cursor.fetchone() is None:
                    raise _Full
            if random.randrange(_CLEANUP_ONE_IN) == 0:
                cursor.execute(f"DELETE FROM {table} WHERE expires < %s", [stamp])  # noqa: S608
    except _Full:
        return False, _database_counts(counters, now)
    return True, []


# --- Operations ----------------------------------------------------------------------------------


def _take(counters: list[Counter], now: float, reserve: bool) -> Reservation:
    if not counters:
        return Reservation()
    store = _redis_acquire if settings.REDIS_URL else _database_acquire
    try:
        taken, counts = store(counters, now, reserve)
    except Exception:  # the store is down: fail open, the request still gets its answer
        logger.warning("rate-limit store unavailable; not counting", exc_info=True)
        return Reservation()
    if not taken:
        _raise_over(counters, counts, now)
    return Reservation([c.key(now) for c in counters if not c.kept])


def acquire(counters: list[Counter], now: float | None = None) -> Reservation:
    """Take one slot on every counter, atomically, or raise RateLimited and take none.

    Call before the work the limit protects; ``release`` the reservation if the attempt
    succeeded. A store that cannot be reached grants an empty reservation (fail open)."""
    return _take(counters, time.time() if now is None else now, reserve=True)


def release(reservation: Reservation) -> None:
    """Give back the slots of a successful attempt (those of ``kept`` counters stay taken)."""
    if not reservation.keys:
        return
    try:
        if settings.REDIS_URL:
            _script(settings.REDIS_URL, _RELEASE_LUA)(keys=reservation.keys)
            return
        placeholders = ", ".join(["%s"] * len(reservation.keys))
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {_table()} SET count = count - 1 "  # noqa: S608
                f"WHERE key IN ({placeholders}) AND count > 0",
                reservation.keys,
            )
    except Exception:
        logger.warning("rate-limit store unavailable; slot not released", exc_info=True)


def check(counters: list[Counter], now: float | None = None) -> None:
    """Raise RateLimited when a next attempt would be refused (reads, never writes)."""
    now = time.time() if now is None else now
    if not counters:
        return
    try:
        if settings.REDIS_URL:
            keys = [k for c in counters for k in (c.key(now), c.key(now, back=1))]
            values = [int(v or 0) for v in _redis(settings.REDIS_URL).mget(keys)]
            counts = list(zip(values[0::2], values[1::2], strict=True))
        else:
            counts = _database_counts(counters, now)
    except Exception:
        logger.warning("rate-limit store unavailable; not checking", exc_info=True)
        return
    _raise_over(counters, counts, now)


def hit(counters: list[Counter], now: float | None = None) -> None:
    """Count one event on each counter, whatever the counts (a failure seen after the fact)."""
    _take(counters, time.time() if now is None else now, reserve=False)


def _raise_over(counters: list[Counter], counts: list[tuple[int, int]], now: float) -> None:
    over = [
        (counter.retry_after(previous, current, now), counter.scope)
        for counter, (current, previous) in zip(counters, counts, strict=True)
        if not counter.allows(previous, current, now)
    ]
    if over:
        raise RateLimited(*max(over))


# --- The counters of each door ------------------------------------------------------------------


def token_failure_counters(client_id: str | None, ip: str | None) -> list[Counter]:
    """Failed client authentications: per (client_id, address) and per address.

    Nothing without an address (``client_ip`` could not know it: a Unix socket whose proxy is
    not in TRUSTED_PROXIES): a client_id alone is never counted, as anyone may send it."""
    if not ip:
        return []
    bucket = address_bucket(ip)
    counters = []
    if client_id:
        pair = f"{client_id[:256]}\x00{bucket}"
        counters.append(Counter("token-client-ip", pair, rate_setting("RATE_LIMIT_TOKEN_FAILURES")))
    counters.append(Counter("token-ip", bucket, rate_setting("RATE_LIMIT_TOKEN_FAILURES_PER_IP")))
    return counters


def argon2_counters(ip: str | None) -> list[Counter]:
    """Argon2 verifications per address, right or wrong (kept: success does not give it back)."""
    if not ip:
        return []
    rate = rate_setting("RATE_LIMIT_ARGON2_PER_IP")
    return [Counter("argon2-ip", address_bucket(ip), rate, kept=True)]


def login_failure_counters(username: str, ip: str | None) -> list[Counter]:
    """Log-in failures per account (case-insensitive) and, at ten times that, per address."""
    rate = rate_setting("RATE_LIMIT_LOGIN_FAILURES")
    counters = [Counter("login-account", username.strip().lower()[:256], rate)]
    if ip:
        counters.append(Counter("login-ip", address_bucket(ip), rate.times(LOGIN_ADDRESS_FACTOR)))
    return counters


def api_counters(client_id: str) -> list[Counter]:
    return [Counter("api", client_id, rate_setting("RATE_LIMIT_API"))]
