"""The token endpoint's hot path: authenticate a client, build its claims, sign.

One SQL query per request reads the client, its usable secrets and the current key id
together (on PostgreSQL under the asgi worker, one query reads them for all the requests that
wait at the same time: oauth.token.batching, which hands them over in ``prefetched``). A secret
verified once is remembered per process under an HMAC of the presented value (with a
per-process random key), so argon2 runs once per secret and process; the secret's row is still
read on every request, so a revoked, deleted or expired secret fails at once. Nothing is
written on success except ``last_used_time``, at most once a minute per secret.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from clients.models import ApiClient, ClientSecret, check_secret, hash_secret
from oauth import keys
from oauth.models import SigningKey
from portal.lib.encoding import loads


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


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scopes: list[str]
    jti: str
    claims: dict[str, Any]


@dataclass(frozen=True)
class Prefetched:
    """A client's token-query rows, read after its request arrived (oauth.token.batching), with the
    times the query used and how to record a secret's use."""

    client_id: str
    rows: list[tuple]
    now: Any
    stale: Any
    touch: Callable[[str, Any, Any], None]


# Set around a token request whose rows were read ahead (portal.serving.bridge, oauth.token.batching).
prefetched: contextvars.ContextVar[Prefetched | None] = contextvars.ContextVar(
    "prefetched", default=None
)


_COLUMNS = (
    "SELECT c.id, c.organization_id, c.scopes, c.audience, c.custom_claims, c.expiry, "
    "s.id, s.secret_hash, s.secret_suffix, "
    "CASE WHEN s.last_used_time IS NULL OR s.last_used_time < %s THEN 1 ELSE 0 END, "
    "(SELECT k.kid FROM {key} k WHERE k.retire_time IS NULL ORDER BY k.create_time DESC LIMIT 1) "
)
_USABLE = "s.status = 'ACTIVE' AND (s.expire_time IS NULL OR s.expire_time > %s)"


def _tables() -> dict[str, str]:
    # Only our own table names are interpolated; every value is a bound parameter.
    return {
        "client": ApiClient._meta.db_table,
        "secret": ClientSecret._meta.db_table,
        "key": SigningKey._meta.db_table,
    }


def _sql() -> str:
    """The token query for one client: (stale, client id, now)."""
    return (
        _COLUMNS + "FROM {client} c JOIN {secret} s ON s.client_id = c.id "
        "WHERE c.id = %s AND " + _USABLE
    ).format(**_tables())


def batch_sql() -> str:
    """The token query for several clients at once (PostgreSQL): (stale, [client ids], now).

    One index lookup per id into each table, whatever the planner believes about their sizes
    (OFFSET 0 keeps it from flattening the lateral subqueries): oauth.token.batching runs it with a
    generic plan, which must be right for a handful of ids and for a table that has grown
    since its statistics were taken (or never had any: autovacuum off).
    """
    return (
        _COLUMNS + "FROM unnest(%s::varchar[]) AS wanted(id) "
        "CROSS JOIN LATERAL (SELECT id, organization_id, scopes, audience, custom_claims, expiry "
        "FROM {client} WHERE id = wanted.id OFFSET 0) c "
        "CROSS JOIN LATERAL (SELECT id, secret_hash, secret_suffix, last_used_time "
        "FROM {secret} s WHERE s.client_id = wanted.id AND " + _USABLE + " OFFSET 0) s"
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
_TOUCH_SQL: str | None = None

# Per-process memory of verified secrets: HMAC(process key, client_id NUL secret) -> (secret id,
# monotonic deadline). The HMAC key never leaves this process; a wrong secret is never stored.
_CACHE_KEY = os.urandom(32)
_verified: dict[bytes, tuple[str, float]] = {}
_VERIFIED_MAX = 10_000
_cache_lock = threading.Lock()
_dummy_hash: str | None = None


def warm_up() -> None:
    """Do at start-up what the first token request would otherwise do: build the SQL, parse the
    current signing key, make the dummy hash, and open the database connection."""
    global _SQL
    if _SQL is None:
        _SQL = _sql()
    keys.current_loaded_key()
    _dummy_check("warm-up")


MAX_CLIENT_ID = 64


def could_be_client_id(value: str) -> bool:
    """Whether a presented client_id can name a client: 1 to 64 characters, none of them NUL.
    Anything else is refused before a query: PostgreSQL text cannot hold a NUL, and a query
    comparing with one fails (a 503 on the token endpoint, and a whole failed batch)."""
    return 0 < len(value) <= MAX_CLIENT_ID and "\x00" not in value


def _json(value: Any) -> Any:
    """A JSON column's value: text on SQLite, already parsed on PostgreSQL's batch connection."""
    return loads(value) if isinstance(value, str | bytes) else value


def _dummy_check(secret: str) -> None:
    """Spend what a real check costs, so timing does not tell whether a client id exists."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_secret(secrets.token_urlsafe(32))
    check_secret(secret, _dummy_hash)


def verification_key(client_id: str, secret: str) -> bytes:
    """The verification cache's key for these credentials (an HMAC: never the secret itself)."""
    return hmac.new(
        _CACHE_KEY, f"{client_id}\x00{secret}".encode("utf-8", "surrogatepass"), hashlib.sha256
    ).digest()


def recently_verified(key: bytes) -> bool:
    """True when this process verified the secret of these credentials (their
    ``verification_key``) for this client and still trusts it.

    Such a request will not run argon2, so the rate limiter need not be asked first
    (oauth.ratelimit): a client that keeps presenting its right secret costs nothing extra.
    """
    cached = _verified.get(key)
    return cached is not None and cached[1] > time.monotonic()


def forget_verified_secrets() -> None:
    """Empty this process's verification cache (tests, and after a mass revocation)."""
    with _cache_lock:
        _verified.clear()


def authenticate_with_secret(
    client_id: str, secret: str, key: bytes | None = None
) -> AuthenticatedClient | None:
    """The client when ``secret`` is one of its active, unexpired secrets; None otherwise.

    ``key``: the credentials' ``verification_key`` when the caller has computed it already."""
    global _SQL
    if _SQL is None:
        _SQL = _sql()
    ahead = prefetched.get()
    if ahead is not None and ahead.client_id == client_id:
        rows, now, stale, touch = ahead.rows, ahead.now, ahead.stale, ahead.touch
    else:
        db = connections[DEFAULT_DB_ALIAS]  # looked up once: each lookup asks asgiref's Local
        now = timezone.now()
        adapt = db.ops.adapt_datetimefield_value
        stale = now - timedelta(seconds=settings.OAUTH["LAST_USED_RESOLUTION_SECONDS"])
        rows = _fetch_rows(db, _SQL, [adapt(stale), client_id, adapt(now)])
        touch = _touch
    suffix = secret[-4:]
    candidates = [row for row in rows if hmac.compare_digest(row[8], suffix)]
    if not candidates:
        _dummy_check(secret)
        return None
    if key is None:
        key = verification_key(client_id, secret)
    cached = _verified.get(key)
    matched = None
    if cached is not None and cached[1] > time.monotonic():
        matched = next((row for row in candidates if row[6] == cached[0]), None)
    if matched is None:
        matched = next((row for row in candidates if check_secret(secret, row[7])), None)
        if matched is None:
            return None
        ttl = settings.OAUTH["SECRET_CACHE_SECONDS"]
        if ttl > 0:
            with _cache_lock:
                if len(_verified) >= _VERIFIED_MAX:
                    _verified.clear()
                _verified[key] = (matched[6], time.monotonic() + ttl)
    if matched[9]:
        touch(matched[6], now, stale)
    return AuthenticatedClient(
        client_id=matched[0],
        organization_id=matched[1],
        scopes=_json(matched[2]),
        audience=_json(matched[3]),
        custom_claims=_json(matched[4]),
        expiry=matched[5],
        current_kid=matched[10],
        secret_id=matched[6],
    )


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
        if db.queries_logged:  # DEBUG or a test counting queries: Django records it
            with db.make_debug_cursor(cursor) as debug_cursor:
                debug_cursor.execute(sql, params)
                return debug_cursor.fetchall()
        cursor.execute(sql, params)
        return cursor.fetchall()


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


def _signing_key(current_kid: str | None) -> keys.LoadedKey:
    if current_kid is None:
        return keys.current_loaded_key()
    return keys.loaded_key_by_kid(current_kid)


def new_jti() -> str:
    return f"tkn_{secrets.randbits(80)}"


def issue_token(
    client: AuthenticatedClient,
    *,
    scopes: list[str] | None = None,
    audience: list[str] | None = None,
) -> IssuedToken:
    """Sign an access token (RFC 9068 shape, plus the guide's ``scopes`` and ``oid``)."""
    scopes = client.scopes if scopes is None else scopes
    audience = client.audience if audience is None else audience
    issued_at = int(time.time())
    jti = new_jti()
    claims: dict[str, Any] = {item["key"]: item["value"] for item in client.custom_claims}
    claims.update(
        {
            "iss": settings.OAUTH["ISSUER"],
            "sub": client.client_id,
            "client_id": client.client_id,
        }
    )
    if client.organization_id:
        claims["oid"] = client.organization_id
    if audience:
        claims["aud"] = audience[0] if len(audience) == 1 else list(audience)
    claims["scopes"] = list(scopes)
    if scopes:
        claims["scope"] = " ".join(scopes)
    claims.update(
        {"iat": issued_at, "nbf": issued_at, "exp": issued_at + client.expiry, "jti": jti}
    )
    access_token = _signing_key(client.current_kid).encode(claims)
    return IssuedToken(
        access_token=access_token,
        expires_in=client.expiry,
        scopes=list(scopes),
        jti=jti,
        claims=claims,
    )
