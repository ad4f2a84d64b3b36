"""The token query, batched, for the ASGI server on PostgreSQL (``portal.serving.bridge``).

Under load a worker has several token requests waiting for their row sets at once. Each one
costs PostgreSQL a wake-up, a parse of the message and an execution, and costs the worker a
round trip through psycopg, which together cost as much as half the signature. Here the
requests that arrive while a query is on the wire wait for the next one, which reads the rows of
all their clients at once (``WHERE c.id = ANY(...)``): the first request of a quiet moment is
sent at once, and under load one query serves many.

Each request's rows are still read after the request arrived (a query already on the wire does
not serve it), so a revoked, deleted or expired secret is refused at once, as on the synchronous
path. Anything the batch cannot answer (no client id in the request, a database error) goes to
that synchronous path (``oauth.token.lookup.read_rows``, in the server's pool), which answers
and logs as always; a round that the database does not answer within
OAUTH_TOKEN_DATABASE_TIMEOUT gives its requests a 503 at once. ``last_used_time`` is written
on this connection too, at most once a minute per secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from psycopg.types.json import set_json_loads

from oauth.settings import oauth_settings
from oauth.token import lookup
from oauth.token.lookup import Prefetched, shut_socket
from portal.lib.encoding import loads

logger = logging.getLogger("oauth.token")


class TokenQueryBatcher:
    """One PostgreSQL connection per worker that reads the rows of waiting token requests."""

    def __init__(
        self, connect_params: dict[str, Any], max_age: float | None, timeout: float = 2.0
    ) -> None:
        self.connect_params = connect_params
        self.max_age = max_age
        self.timeout = timeout
        self.gave_up = False  # the current round's time ran out
        self.connection: psycopg.AsyncConnection | None = None
        # Rounds never overlap, so one cursor serves them all: a new cursor per round cost
        # about a third of the round's own CPU (its adapters are set up anew).
        self.cursor: psycopg.AsyncCursor | None = None
        self.connected_at = 0.0
        self.waiting: dict[str, list[asyncio.Future]] = {}
        self.touches: dict[str, tuple[Any, Any]] = {}
        self.task: asyncio.Task | None = None  # held: the loop keeps only a weak reference
        self.rounds = 0  # queries sent, for tests and curiosity
        self.loop: asyncio.AbstractEventLoop | None = None  # the worker's, once serving
        self.select_sql = lookup.batch_sql()
        self.touch_sql = lookup.batch_touch_sql()

    async def prefetch(self, client_id: str) -> Prefetched | None:
        """The rows of the client a request names, read after it arrived; None when the
        synchronous path must read them."""
        self.loop = asyncio.get_running_loop()
        future = self.loop.create_future()
        self.waiting.setdefault(client_id, []).append(future)
        self._wake()
        return await future

    def touch(self, secret_id: str, now: Any, stale: Any) -> None:
        """Record a secret's use on the next round (never fails a token request). Called on the
        loop, or from the pool thread that verified a new secret (portal.serving.bridge)."""
        try:
            on_loop = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._add_touch(secret_id, now, stale)
        elif self.loop is not None:
            self.loop.call_soon_threadsafe(self._add_touch, secret_id, now, stale)

    def _add_touch(self, secret_id: str, now: Any, stale: Any) -> None:
        self.touches[secret_id] = (now, stale)
        self._wake()

    def _wake(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while self.waiting or self.touches:
                waiting, self.waiting = self.waiting, {}
                touches, self.touches = self.touches, {}
                await self._round(waiting, touches)
        finally:
            self.task = None
            # Only a bug gets here with requests still waiting: send them the synchronous way.
            for futures in self.waiting.values():
                _resolve(futures, None)
            self.waiting = {}

    async def _round(
        self, waiting: dict[str, list[asyncio.Future]], touches: dict[str, tuple[Any, Any]]
    ) -> None:
        now = timezone.now()
        stale = now - timedelta(seconds=oauth_settings.LAST_USED_RESOLUTION_SECONDS)
        # The whole round, connecting included, within the token path's database timeout: a
        # database that stops answering (packets dropped, a frozen server) costs the waiting
        # requests that long and a 503, never a frozen worker. Not asyncio.timeout: psycopg
        # answers a cancelled query by asking the server to cancel it, which through a dead
        # network waits ten more seconds; a timer that shuts the connection's socket makes the
        # query fail at once instead, and costs a timer handle per round.
        self.gave_up = False
        timer = asyncio.get_running_loop().call_later(self.timeout, self._give_up)
        try:
            connection = await self._connection()
            if self.gave_up:  # connected, but too late
                raise TimeoutError
            if touches:
                await self._touch(connection, touches)
            if not waiting:
                return
            cursor = self.cursor
            self.rounds += 1
            await cursor.execute(self.select_sql, [stale, list(waiting), now])
            rows = await cursor.fetchall()
        except Exception as exc:
            await self._disconnect()
            if self.gave_up:
                logger.warning(
                    "token query batch: no answer from the database in %s s", self.timeout
                )
                for client_id, futures in waiting.items():
                    _resolve(futures, Prefetched(client_id, None, now, stale, self.touch))
                return
            # The synchronous path answers (and logs, and reconnects).
            logger.info("token query batch failed: %s: %s", type(exc).__name__, exc)
            for futures in waiting.values():
                _resolve(futures, None)
            return
        finally:
            timer.cancel()
        by_client: dict[str, list[tuple]] = {client_id: [] for client_id in waiting}
        for row in rows:
            found = by_client.get(row[0])
            if found is not None:  # always, as the ids are compared exactly
                found.append(row)
        for client_id, futures in waiting.items():
            _resolve(futures, Prefetched(client_id, by_client[client_id], now, stale, self.touch))

    def _give_up(self) -> None:
        """The round's time is up: shut its connection's socket, so that the query waiting on
        it fails now (a connection being opened is bounded by its connect_timeout)."""
        self.gave_up = True
        connection = self.connection
        if connection is not None and not connection.closed:
            shut_socket(connection.pgconn.socket)

    async def _touch(
        self, connection: psycopg.AsyncConnection, touches: dict[str, tuple[Any, Any]]
    ) -> None:
        now, stale = next(iter(touches.values()))
        try:
            await connection.execute(self.touch_sql, [now, list(touches), stale])
        except psycopg.DatabaseError as exc:
            # A read replica, or a lock: the next use a minute on tries again.
            logger.info("last_used_time not recorded: %s: %s", type(exc).__name__, exc)

    async def _connection(self) -> psycopg.AsyncConnection:
        connection = self.connection
        if connection is not None and not connection.closed:
            if self.max_age is None or time.monotonic() - self.connected_at < self.max_age:
                return connection
            await self._disconnect()
        connection = await psycopg.AsyncConnection.connect(**self.connect_params, autocommit=True)
        # PostgreSQL would plan the batch query anew on every run: its generic plan (for any
        # number of ids) is costed for ten, which looks dearer than a custom plan for the one or
        # few ids at hand, so the prepared statement would save nothing. The generic plan is
        # right at any size (index lookups per id once the tables are large).
        await connection.execute("SET plan_cache_mode = force_generic_plan")
        # The server gives up too (a lock, a slow plan), so that it does not work on for an
        # answer nobody waits for.
        await connection.execute(f"SET statement_timeout = {int(self.timeout * 1000)}")
        # The clients' JSON columns (jsonb), parsed as the synchronous path parses them.
        set_json_loads(loads, connection)
        self.connection = connection
        self.cursor = connection.cursor()
        self.connected_at = time.monotonic()
        return self.connection

    async def connect(self) -> None:
        """Open the connection now (the worker's start-up), so the first request does not."""
        try:
            await self._connection()
        except psycopg.Error as exc:
            logger.warning("token query batcher: no connection yet: %s", exc)

    async def close(self) -> None:
        """Finish the round under way (a use to record, say), then close the connection."""
        task = self.task
        if task is not None and task is not asyncio.current_task():
            with contextlib.suppress(Exception):
                await task
        await self._disconnect()

    async def _disconnect(self) -> None:
        connection, self.connection = self.connection, None
        self.cursor = None
        if connection is not None:
            with contextlib.suppress(psycopg.Error):
                await connection.close()


def _resolve(futures: list[asyncio.Future], result: Prefetched | None) -> None:
    for future in futures:
        if not future.done():  # a request whose client went away was cancelled
            future.set_result(result)


def token_query_batcher() -> TokenQueryBatcher | None:
    """A batcher for the default database when it is PostgreSQL and batching is on."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql" or not oauth_settings.TOKEN_QUERY_BATCHING:
        return None
    max_age = db.settings_dict.get("CONN_MAX_AGE")
    if max_age == 0:
        return None  # no persistent connections wanted: each request opens its own
    params = db.get_connection_params()
    params.pop("cursor_factory", None)  # Django's synchronous cursor class
    # Each round, connecting included, is bounded by OAUTH_TOKEN_DATABASE_TIMEOUT; so is the
    # connect_timeout of the settings' OPTIONS (DATABASE_CONNECT_TIMEOUT) for this connection.
    timeout = oauth_settings.TOKEN_DATABASE_TIMEOUT
    params["connect_timeout"] = min(params.get("connect_timeout") or timeout, timeout)
    return TokenQueryBatcher(
        params,
        None if max_age is None else float(max_age),
        timeout=timeout,
    )
