"""oauth.token.batching: token requests that wait together share one query (PostgreSQL, asgi).

The requests go through the production ASGI application (portal.serving.bridge.AsgiServer) in
process, on one event loop, with the real token fast path and a real PostgreSQL connection;
tests/e2e drives the whole server over HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest
from django.db import connection, connections
from django.utils import timezone

from clients.models import ClientSecret
from clients.services import secret_set_status
from oauth import stats
from oauth.models import TokenStat
from oauth.token.authenticate import authenticate_with_secret, forget_verified_secrets
from oauth.token.batching import TokenQueryBatcher, token_query_batcher
from oauth.token.endpoint import warm_up
from oauth.token.lookup import Prefetched, batch_sql
from portal.serving.bridge import AsgiServer
from portal.serving.fastpath import TokenFastPath
from tests.conftest import SYSTEM
from tests.serving.helpers import PausableProxy, closed_port, scope

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the batcher serves PostgreSQL only"
)


@pytest.mark.django_db
def test_prefetched_rows_serve_only_the_client_they_were_read_for(guide_client, other_client):
    forget_verified_secrets()

    def noop(*args: Any) -> None:
        pass

    now = timezone.now()
    # Rows read for another client are ignored: the endpoint reads its own.
    ahead = Prefetched(other_client.client_id, [], now, now, noop)
    assert authenticate_with_secret(guide_client.client_id, guide_client.secret, None, ahead)
    # Rows read for this client are used as read: none (its secret was revoked meanwhile) means
    # refused, even though the database still holds the secret.
    ahead = Prefetched(guide_client.client_id, [], now, now, noop)
    assert (
        authenticate_with_secret(guide_client.client_id, guide_client.secret, None, ahead) is None
    )


# --- Through the ASGI application, on one loop ------------------------------------------------


def _token_scope(credentials: Any, basic: bool = False) -> tuple[dict, bytes]:
    form: dict[str, str] = {"grant_type": "client_credentials"}
    headers = [(b"host", b"localhost"), (b"content-type", b"application/x-www-form-urlencoded")]
    if basic:
        headers.append((b"authorization", credentials.basic().encode()))
    else:
        form.update(client_id=credentials.client_id, client_secret=credentials.secret)
    return scope(path="/oauth/token", headers=headers), urlencode(form).encode()


async def _request(app: AsgiServer, scope: dict, body: bytes) -> tuple[int, dict]:
    sent: list[dict] = []
    delivered = False

    async def receive() -> dict:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], json.loads(sent[1]["body"])


async def _request_raw(app: AsgiServer, scope: dict, body: bytes) -> tuple[int, dict, dict]:
    """The status, headers and JSON body of one request (any status)."""
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], dict(sent[0]["headers"]), json.loads(sent[1]["body"])


def _subject(answer: dict) -> str:
    payload = answer["access_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]


def serve(app: AsgiServer, work: Any) -> Any:
    """Run ``work(app)`` on one loop between the application's lifespan start and end."""

    async def main() -> Any:
        inbox: asyncio.Queue = asyncio.Queue()
        outbox: asyncio.Queue = asyncio.Queue()
        lifespan = asyncio.create_task(app({"type": "lifespan"}, inbox.get, outbox.put))
        await inbox.put({"type": "lifespan.startup"})
        assert (await outbox.get())["type"] == "lifespan.startup.complete"
        try:
            return await work(app)
        finally:
            # The pool's thread (these apps have one) verified new secrets on its own connection.
            await asyncio.get_running_loop().run_in_executor(app.pool, connections.close_all)
            await inbox.put({"type": "lifespan.shutdown"})
            await lifespan

    return asyncio.run(asyncio.wait_for(main(), 30))


def batched_app(batcher: TokenQueryBatcher | None = None) -> AsgiServer:
    """The production ASGI application around the token fast path, with a batcher."""
    batcher = batcher or token_query_batcher()
    assert batcher is not None
    fast = TokenFastPath(lambda e, s: [])
    return AsgiServer(fast, threads=1, fast_path=fast, warm_up=warm_up, batcher=batcher)


@pytest.fixture
def app() -> AsgiServer:
    forget_verified_secrets()  # each test starts with argon2, as a fresh worker does
    return batched_app()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_token_requests_waiting_together_share_one_query(app, guide_client, other_client):
    callers = [guide_client, other_client] * 6

    async def work(app: AsgiServer) -> list:
        # Verified once each first (argon2), so that the burst below only reads rows.
        for caller in (guide_client, other_client):
            assert (await _request(app, *_token_scope(caller)))[0] == 200
        before = app.batcher.rounds
        answers = await asyncio.gather(
            *[_request(app, *_token_scope(c, basic=i % 4 == 0)) for i, c in enumerate(callers)]
        )
        return [answers, app.batcher.rounds - before]

    answers, rounds = serve(app, work)
    assert [status for status, _ in answers] == [200] * len(callers)
    # Each token names the client that asked for it: rows are never handed to another client.
    assert [_subject(answer) for _, answer in answers] == [c.client_id for c in callers]
    assert 1 <= rounds <= 2, rounds


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_deactivated_secret_is_refused_at_once_through_the_batch(app, guide_client):
    secret = ClientSecret.objects.get(client=guide_client.client)

    def deactivate() -> None:  # from a thread of its own, as the console or the API would
        try:
            secret_set_status(actor=SYSTEM, secret=secret, status="INACTIVE")
        finally:
            connections.close_all()

    async def work(app: AsgiServer) -> list:
        first = await _request(app, *_token_scope(guide_client))
        await asyncio.to_thread(deactivate)
        second = await _request(app, *_token_scope(guide_client))
        return [first, second]

    first, second = serve(app, work)
    assert first[0] == 200
    assert second == (
        401,
        {"error": "invalid_client", "error_description": "client authentication failed"},
    )


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_batch_records_last_used_time_at_most_once_a_minute(app, guide_client):
    secret = ClientSecret.objects.get(client=guide_client.client)
    assert secret.last_used_time is None

    async def work(app: AsgiServer) -> None:
        for _ in range(3):
            assert (await _request(app, *_token_scope(guide_client)))[0] == 200

    serve(app, work)  # the shutdown finishes the round that records the use
    secret.refresh_from_db()
    first_use = secret.last_used_time
    assert first_use is not None and timezone.now() - first_use < timedelta(seconds=30)
    serve(batched_app(), work)
    secret.refresh_from_db()
    assert secret.last_used_time == first_use  # within the minute: not written again


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_batch_that_cannot_reach_the_database_leaves_the_request_to_the_usual_path(
    guide_client, caplog
):
    """The batcher's connection fails (here: nothing listens on its port); Django's connection
    still answers, so the client gets its token, and the failure is logged."""
    forget_verified_secrets()
    batcher = token_query_batcher()
    params = {**batcher.connect_params, "host": "127.0.0.1", "port": closed_port()}
    app = batched_app(TokenQueryBatcher({**params, "connect_timeout": 2}, None))

    async def work(app: AsgiServer) -> tuple[int, dict]:
        return await _request(app, *_token_scope(guide_client))

    with caplog.at_level(logging.INFO, logger="oauth.token"):
        status, answer = serve(app, work)
    assert status == 200
    assert _subject(answer) == guide_client.client_id
    assert "token query batch failed: OperationalError" in caplog.text
    assert guide_client.secret not in caplog.text


@pytest.mark.django_db
def test_there_is_no_batcher_unless_postgresql_keeps_connections_and_batching_is_on(settings):
    if connection.vendor != "postgresql":
        assert token_query_batcher() is None
        return
    assert isinstance(token_query_batcher(), TokenQueryBatcher)
    settings.OAUTH = {**settings.OAUTH, "TOKEN_QUERY_BATCHING": False}
    assert token_query_batcher() is None


@postgres_only
def test_no_batcher_when_connections_are_not_kept(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    assert token_query_batcher() is None


@postgres_only
def test_the_token_query_is_prepared_on_postgresql():
    assert connection.settings_dict["OPTIONS"]["prepare_threshold"] == 5


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_dead_django_connection_behind_the_batch_loses_no_count(app, guide_client):
    """Requests whose rows the batch read leave Django's connection alone: when it died (here:
    its backend terminated) while counted as checked, the stats flush that finds it dead keeps
    its counts, Django drops the connection, and the next flush writes them all."""
    stats.counter.reset()

    async def issue() -> None:
        assert (await _request(app, *_token_scope(guide_client)))[0] == 200

    async def work(app: AsgiServer) -> None:
        await issue()  # argon2, in the pool
        await issue()  # on the loop, which does the upkeep now
        pid = app.token_context.run(lambda: connections["default"].connection.info.backend_pid)
        with psycopg.connect(**token_query_batcher().connect_params, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        # Under load the connection counts as checked (portal.serving.fastpath.HEALTHY_FOR_SECONDS).
        app.token_context.run(lambda: setattr(connections["default"], "health_check_done", True))
        stats.counter._next_flush = 0  # due now: it runs on Django's (dead) connection
        await issue()
        assert sum(issued for issued, _ in stats.counter.pending().values()) == 3  # kept
        await asyncio.sleep(1.1)
        stats.counter._next_flush = 0
        await issue()  # the upkeep closes the dead connection first; the flush reconnects

    serve(app, work)
    assert stats.counter.pending() == {}
    assert sum(TokenStat.objects.values_list("issued", flat=True)) == 4


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_upkeep_of_django_connection_still_runs_once_a_second(app, guide_client):
    """With rows read ahead, Django's connection upkeep (close after an error, or past
    DATABASE_CONN_MAX_AGE) is skipped, except once a second."""

    def django_connection() -> Any:
        return app.token_context.run(lambda: connections["default"].connection)

    def expire() -> None:
        connections["default"].close_at = time.monotonic() - 1  # past CONN_MAX_AGE

    async def work(app: AsgiServer) -> list:
        for _ in range(2):  # argon2 in the pool, then on the loop, which does the upkeep now
            assert (await _request(app, *_token_scope(guide_client)))[0] == 200
        app.token_context.run(expire)
        assert (await _request(app, *_token_scope(guide_client)))[0] == 200
        still_open = django_connection() is not None  # within the second: left alone
        await asyncio.sleep(1.1)
        assert (await _request(app, *_token_scope(guide_client)))[0] == 200
        return [still_open, django_connection() is None]

    assert serve(app, work) == [True, True]


@postgres_only
@pytest.mark.django_db
def test_the_batch_query_looks_each_client_up_by_index_whatever_the_statistics(guide_client):
    """The batcher runs its query with a generic plan: on tables without statistics (as here,
    and wherever autovacuum is off) it must still be one index lookup per id, never a scan."""
    sql = batch_sql()
    for number in (1, 2, 3):
        sql = sql.replace("%s", f"${number}", 1)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE token_batch AS {sql}")
        try:
            cursor.execute(
                "EXPLAIN EXECUTE token_batch(%s, %s, %s)", [now, [guide_client.client_id], now]
            )
            plan = "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("DEALLOCATE token_batch")
    assert "Seq Scan" not in plan, plan
    # client, secret, current key, and the organization (its token quota caps)
    assert plan.count("Index Scan") == 4, plan


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_database_that_stops_answering_gets_a_503_not_a_frozen_loop(guide_client, caplog):
    """The batch's connection goes through a proxy that then drops every byte (a frozen server,
    or packets dropped on the way): the round gives up after its timeout, its requests get a
    503 with Retry-After in the OAuth error format, and once the database answers again the
    next round reconnects."""
    forget_verified_secrets()
    settings_dict = connection.settings_dict
    proxy = PausableProxy(
        (settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"] or 5432))
    )
    batcher = token_query_batcher()
    params = {**batcher.connect_params, "host": "127.0.0.1", "port": proxy.port}
    app = batched_app(TokenQueryBatcher(params, None, timeout=1))

    async def work(app: AsgiServer) -> list:
        answers = [await _request_raw(app, *_token_scope(guide_client))]  # argon2, in the pool
        proxy.stall()
        # Verified now: answered on the loop, which must not wait for the database.
        answers.append(await _request_raw(app, *_token_scope(guide_client)))
        answers.append(await _request_raw(app, *_token_scope(guide_client, basic=True)))
        proxy.resume()
        answers.append(await _request_raw(app, *_token_scope(guide_client)))
        return answers

    try:
        with caplog.at_level(logging.WARNING, logger="oauth.token"):
            answers = serve(app, work)
    finally:
        proxy.pause()
    assert [status for status, _, _ in answers] == [200, 503, 503, 200]
    for _status, headers, answer in answers[1:3]:
        assert answer == {
            "error": "temporarily_unavailable",
            "error_description": "try again shortly",
        }
        assert int(headers[b"retry-after"]) > 0
        assert headers[b"content-type"] == b"application/json"
    assert "token query batch: no answer from the database in 1 s" in caplog.text


@postgres_only
def test_the_batch_connection_has_the_token_path_timeouts():
    batcher = token_query_batcher()
    # DATABASE_CONNECT_TIMEOUT (5 s) for every connection, the token path's 2 s for this one.
    assert connection.settings_dict["OPTIONS"]["connect_timeout"] == 5
    assert batcher.connect_params["connect_timeout"] == 2
    assert batcher.timeout == 2

    async def statement_timeout() -> str:
        try:
            await batcher.connect()
            cursor = await batcher.connection.execute("SHOW statement_timeout")
            return (await cursor.fetchone())[0]
        finally:
            await batcher.close()

    assert asyncio.run(statement_timeout()) == "2s"
