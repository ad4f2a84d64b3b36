"""The token query: a client, its usable secrets and the current key id, in one round trip.

One query per request (on PostgreSQL under the asgi worker, one query for all the requests that
wait at the same time: ``oauth.token.batching``, whose rows arrive as ``Prefetched``). Each
request's rows are read after it arrived, so a revoked, deleted or expired secret fails at once.
Nothing is written on success except ``last_used_time``, at most once a minute per secret, and,
once, the keyed lookup of a secret made before lookups existed (``record_lookup``).
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from clients.models import ApiClient, ClientSecret, Organization
from oauth.models import SigningKey
from oauth.settings import oauth_settings
from portal.lib.encoding import loads


@dataclass(frozen=True)
class Federation:
    """Which trust policy admitted which external workload: the access token's ``act`` claim
    (RFC 8693 §4.1: the external ``iss`` and ``sub``) and the audit event's details."""

    policy_id: str
    policy_name: str
    issuer: str
    subject: str | None

    @property
    def act(self) -> dict[str, str]:
        act = {"iss": self.issuer}
        if self.subject is not None:
            act["sub"] = self.subject
        return act


@dataclass(frozen=True)
class AuthenticatedClient:
    """What the token endpoint needs to know about a client once it has proven who it is."""

    client_id: str
    organization_id: str | None
    scopes: list[str]
    audience: list[str]
    custom_claims: list[dict[str, str]]
    expiry: int
    current_kid: str | None
    secret_id: str | None = None
    # RFC 9449 §5.2 dpop_bound_access_tokens: a token request without a DPoP proof is refused.
    dpop_bound: bool = False

    # Set when an external workload token admitted the client (oauth.federation).
    federation: Federation | None = None
    # The token quota columns of the client and of its organization (per hour, per day, mode;
    # oauth.quotas), or None when neither has a quota.
    quota: tuple[Any, ...] | None = None

    @classmethod
    def of_client(
        cls, client: ApiClient, federation: Federation | None = None
    ) -> AuthenticatedClient:
        """A client read as a model (the assertion and federation paths, off the token query)."""
        return cls(
            client_id=client.id,
            organization_id=client.organization_id,
            scopes=list(client.scopes),
            audience=list(client.audience),
            custom_claims=list(client.custom_claims),
            expiry=client.expiry,
            current_kid=None,
            dpop_bound=client.dpop_bound_access_tokens,
            federation=federation,
            quota=_quota_columns(
                (
                    client.token_quota_per_hour,
                    client.token_quota_per_day,
                    client.token_quota_mode,
                    *_organization_quota(client),
                )
            ),
        )

    @classmethod
    def from_row(cls, row: tuple) -> AuthenticatedClient:
        """The client of one row of the token query (its columns: see ``_COLUMNS``)."""
        return cls(
            client_id=row[0],
            organization_id=row[1],
            scopes=_json(row[2]),
            audience=_json(row[3]),
            custom_claims=_json(row[4]),
            expiry=row[5],
            current_kid=row[10],
            secret_id=row[6],
            dpop_bound=bool(row[11]),
            quota=_quota_columns(row[QUOTA_COLUMNS]),
        )


@dataclass(frozen=True)
class Prefetched:
    """A client's token-query rows, read after its request arrived (oauth.token.batching), with
    the times the query used and how to record a secret's use. ``rows`` is None when the
    database did not answer within OAUTH_TOKEN_DATABASE_TIMEOUT: the request gets a 503."""

    client_id: str
    rows: list[tuple] | None
    now: Any
    stale: Any
    touch: Callable[[str, Any, Any], None]


_COLUMNS = (
    "SELECT c.id, c.organization_id, c.scopes, c.audience, c.custom_claims, c.expiry, "
    "s.id, s.secret_hash, s.secret_suffix, "
    "CASE WHEN s.last_used_time IS NULL OR s.last_used_time < %s THEN 1 ELSE 0 END, "
    "(SELECT k.kid FROM {key} k WHERE k.retire_time IS NULL ORDER BY k.create_time DESC LIMIT 1), "
    "c.dpop_bound_access_tokens, "
    "c.token_quota_per_hour, c.token_quota_per_day, c.token_quota_mode, "
    "o.token_quota_per_hour, o.token_quota_per_day, o.token_quota_mode, "
    # Index 18 (NEEDS_LOOKUP): a secret made before keyed lookups (clients.models.secret_lookup).
    "CASE WHEN s.lookup_hmac IS NULL THEN 1 ELSE 0 END "
)


def _quota_columns(columns: tuple[Any, ...]) -> tuple[Any, ...] | None:
    has_quota = any(columns[i] is not None for i in (0, 1, 3, 4))
    return tuple(columns) if has_quota else None


def _organization_quota(client: ApiClient) -> tuple[Any, Any, Any]:
    organization = client.organization if client.organization_id else None
    if organization is None:
        return (None, None, None)
    return (
        organization.token_quota_per_hour,
        organization.token_quota_per_day,
        organization.token_quota_mode,
    )


# The token row's quota columns (the client's, then its organization's), and the column that
# says its secret has no keyed lookup yet.
QUOTA_COLUMNS = slice(12, 18)
NEEDS_LOOKUP = 18

_USABLE = "s.status = 'ACTIVE' AND (s.expire_time IS NULL OR s.expire_time > %s)"


def _tables() -> dict[str, str]:
    # Only our own table names are interpolated; every value is a bound parameter.
    return {
        "client": ApiClient._meta.db_table,
        "secret": ClientSecret._meta.db_table,
        "key": SigningKey._meta.db_table,
        "org": Organization._meta.db_table,
    }


def _sql() -> str:
    """The token query for one client: (stale, client id, now)."""
    return (
        _COLUMNS + "FROM {client} c JOIN {secret} s ON s.client_id = c.id "
        "LEFT JOIN {org} o ON o.id = c.organization_id "
        "WHERE c.id = %s AND " + _USABLE
    ).format(**_tables())


def batch_sql() -> str:
    """The token query for several clients at once (PostgreSQL): (stale, [client ids], now).

    One index lookup per id into each table, whatever the planner believes about their sizes
    (OFFSET 0 keeps it from flattening the lateral subqueries): oauth.batching runs it with a
    generic plan, which must be right for a handful of ids and for a table that has grown
    since its statistics were taken (or never had any: autovacuum off).
    """
    return (
        _COLUMNS + "FROM unnest(%s::varchar[]) AS wanted(id) "
        "CROSS JOIN LATERAL (SELECT id, organization_id, scopes, audience, custom_claims, expiry, "
        "dpop_bound_access_tokens, token_quota_per_hour, token_quota_per_day, token_quota_mode "
        "FROM {client} WHERE id = wanted.id OFFSET 0) c "
        "CROSS JOIN LATERAL (SELECT id, secret_hash, secret_suffix, last_used_time, lookup_hmac "
        "FROM {secret} s WHERE s.client_id = wanted.id AND " + _USABLE + " OFFSET 0) s "
        "LEFT JOIN LATERAL (SELECT token_quota_per_hour, token_quota_per_day, token_quota_mode "
        "FROM {org} WHERE id = c.organization_id OFFSET 0) o ON true"
    ).format(**_tables())


def _touch_sql(which: str = "id = %s") -> str:
    table = ClientSecret._meta.db_table
    return (
        f"UPDATE {table} SET last_used_time = %s "
        f"WHERE {which} AND (last_used_time IS NULL OR last_used_time < %s)"
    )


def batch_touch_sql() -> str:
    """Record the use of several secrets: (now, [secret ids], stale)."""
    return _touch_sql("id = ANY(%s)")


_SQL: str | None = None


def prepare() -> str:
    """Build the token query once (table names come from the models, so not at import)."""
    global _SQL
    _SQL = _sql()
    return _SQL


_TOUCH_SQL: str | None = None


MAX_CLIENT_ID = 64


def could_be_client_id(value: str) -> bool:
    """Whether a presented client_id can name a client: 1 to 64 characters, none of them NUL.
    Anything else is refused before a query: PostgreSQL text cannot hold a NUL, and a query
    comparing with one fails (a 503 on the token endpoint, and a whole failed batch)."""
    return 0 < len(value) <= MAX_CLIENT_ID and "\x00" not in value


def _json(value: Any) -> Any:
    """A JSON column's value: text on SQLite, already parsed on PostgreSQL's batch connection."""
    return loads(value) if isinstance(value, str | bytes) else value


def _fetch_rows(db: BaseDatabaseWrapper, sql: str, params: list[Any]) -> list[tuple]:
    """Run the token query. On PostgreSQL, through a psycopg cursor with server-side binding,
    which psycopg prepares after five runs (``prepare_threshold`` in DATABASES OPTIONS, which
    Django leaves off and portal.settings turns on unless DATABASE_PREPARED_STATEMENTS=false):
    no client-side quoting, and PostgreSQL no longer parses and plans it on every token."""
    if db.vendor != "postgresql":
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    db.ensure_connection()
    with db.wrap_database_errors, psycopg.Cursor(db.connection) as cursor:
        watch = _watchdog.watch(db.connection.pgconn.socket, oauth_settings.TOKEN_DATABASE_TIMEOUT)
        try:
            if db.queries_logged:  # DEBUG or a test counting queries: Django records it
                with db.make_debug_cursor(cursor) as debug_cursor:
                    debug_cursor.execute(sql, params)
                    return debug_cursor.fetchall()
            cursor.execute(sql, params)
            return cursor.fetchall()
        finally:
            _watchdog.unwatch(watch)


class _Watchdog:
    """The token query's timeout on a synchronous connection (OAUTH_TOKEN_DATABASE_TIMEOUT).

    A psycopg query has no client-side timeout, and Django's connection serves other requests
    too, so a statement_timeout of the session would bound them as well. One thread for the
    process looks four times a second at the token queries under way and shuts the socket of
    one that has run too long: the query fails at once (a 503), as it would if the server had
    gone, and Django replaces the connection. Registering a query costs a lock and a dict entry.
    While a query is registered its connection is in use, so the descriptor cannot be reused.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[float, int]] = {}  # watch number -> (deadline, socket)
        self._numbers = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, fd: int, seconds: float) -> int:
        number = next(self._numbers)
        with self._lock:
            self._watched[number] = (time.monotonic() + seconds, fd)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="token-query-watchdog", daemon=True
                )
                self._thread.start()
        return number

    def unwatch(self, number: int) -> None:
        with self._lock:
            self._watched.pop(number, None)

    def _run(self) -> None:
        while True:
            time.sleep(0.25)
            now = time.monotonic()
            with self._lock:
                late = [n for n, (deadline, _fd) in self._watched.items() if deadline <= now]
                for number in late:
                    _deadline, fd = self._watched.pop(number)
                    shut_socket(fd)


def shut_socket(fd: int) -> None:
    """Shut (not close) a database connection's socket, so that whatever waits on it fails now;
    the descriptor stays its library's, to close."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.detach()


_watchdog = _Watchdog()


def read_rows(
    client_id: str, ahead: Prefetched | None = None
) -> tuple[list[tuple], Any, Any, Callable[[str, Any, Any], None]]:
    """The client's token-query rows, the query's "now" and "stale" times, and how to record a
    secret's use: from ``ahead`` when the server read them already, else by the query here."""
    if ahead is not None and ahead.client_id == client_id:
        return ahead.rows, ahead.now, ahead.stale, ahead.touch
    db = connections[DEFAULT_DB_ALIAS]  # looked up once: each lookup asks asgiref's Local
    now = timezone.now()
    adapt = db.ops.adapt_datetimefield_value
    stale = now - timedelta(seconds=oauth_settings.LAST_USED_RESOLUTION_SECONDS)
    rows = _fetch_rows(db, _SQL or prepare(), [adapt(stale), client_id, adapt(now)])
    return rows, now, stale, _touch


def record_lookup(secret_id: str, lookup: str) -> None:
    """Store the keyed lookup of a secret made before lookups existed, once, after argon2 has
    verified it (clients.models.secret_lookup): from then on a leak report finds it. A
    failure (a read replica, a busy SQLite writer) is left for its next verification."""
    table = ClientSecret._meta.db_table
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET lookup_hmac = %s WHERE id = %s AND lookup_hmac IS NULL",
                [lookup, secret_id],
            )
    except DatabaseError:
        pass


def _touch(secret_id: str, now: Any, stale: Any) -> None:
    """Record use, at most once a minute per secret; never fail a token request over it."""
    global _TOUCH_SQL
    if _TOUCH_SQL is None:
        _TOUCH_SQL = _touch_sql()
    adapt = connection.ops.adapt_datetimefield_value
    try:
        with connection.cursor() as cursor:
            cursor.execute(_TOUCH_SQL, [adapt(now), secret_id, adapt(stale)])
    except DatabaseError:
        # A busy SQLite writer or a read replica: the next request will try again.
        pass
