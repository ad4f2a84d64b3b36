"""portal.serving.bridge in process: the ASGI application of the production server.

The WSGI application behind it is a stand-in that records what it was given, except where the
token fast path itself is the subject (tests/e2e run the whole server over HTTP).
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sys
import threading
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.exceptions import SynchronousOnlyOperation
from django.db import connections
from django.db.backends.signals import connection_created

from oauth.token import authenticate
from oauth.token.authenticate import forget_verified_secrets
from oauth.token.endpoint import warm_up
from portal.serving.bridge import DRAIN_BYTES, AsgiServer, synchronous_on_loop, wsgi_environ
from portal.serving.fastpath import TokenFastPath
from tests.serving.helpers import scope


class Recorder:
    """A WSGI application that answers 200 with what it saw, and remembers its thread."""

    def __init__(self, answer: bytes = b"ok", fail: bool = False) -> None:
        self.answer = answer
        self.fail = fail
        self.environ: dict[str, Any] = {}
        self.body = b""
        self.thread = ""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if self.fail:
            raise RuntimeError("boom")
        self.environ = environ
        self.body = environ["wsgi.input"].read()
        self.thread = threading.current_thread().name
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-Seen", "yes")])
        return [self.answer[:1], self.answer[1:]]


def fast_server(behind: Any, **options: Any) -> AsgiServer:
    """The production ASGI application: ``behind`` with the token fast path in front of it."""
    fast = TokenFastPath(behind)
    return AsgiServer(fast, fast_path=fast, **options)


def run(app: AsgiServer, asgi_scope: dict, messages: list[dict]) -> list[dict]:
    """Call the ASGI app with ``messages`` to receive; return what it sent."""
    sent: list[dict] = []
    inbox = list(messages)

    async def receive() -> dict:
        if inbox:
            return inbox.pop(0)
        await asyncio.sleep(3600)  # a real server waits for the disconnect
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(asyncio.wait_for(app(asgi_scope, receive, send), 10))
    return sent


LIFESPAN = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]


async def _initialized_connections() -> list:
    """Django's open connections as code on a running loop sees them (per asgiref context);
    SQLite's in-memory test database is never closed by Django, so it does not count."""
    return [
        c
        for c in connections.all(initialized_only=True)
        if c.connection is not None and not (c.vendor == "sqlite" and c.is_in_memory_db())
    ]


def body(data: bytes, more: bool = False) -> dict:
    return {"type": "http.request", "body": data, "more_body": more}


def test_a_request_reaches_django_in_a_pool_thread_with_its_body_and_headers():
    behind = Recorder(answer=b"hello")
    app = AsgiServer(behind, threads=2)
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", b"7"),
        (b"x-forwarded-for", b"1.1.1.1"),
        (b"x-forwarded-for", b"2.2.2.2"),
    ]
    sent = run(app, scope(headers=headers), [body(b"a=", more=True), body(b"hello")])
    assert sent[0] == {
        "type": "http.response.start",
        "status": 201,
        "headers": [(b"content-type", b"text/plain"), (b"x-seen", b"yes")],
    }
    assert sent[1] == {"type": "http.response.body", "body": b"hello"}
    assert behind.body == b"a=hello"
    assert behind.thread.startswith("django")
    environ = behind.environ
    assert environ["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert environ["CONTENT_LENGTH"] == "7"
    assert environ["HTTP_X_FORWARDED_FOR"] == "1.1.1.1,2.2.2.2"
    assert environ["QUERY_STRING"] == "a=1&b=%20"
    assert (environ["REMOTE_ADDR"], environ["SERVER_PORT"]) == ("10.0.0.7", "8000")


def test_the_environ_follows_pep_3333_for_paths():
    environ = wsgi_environ(scope(path="/app/caf\u00e9", root_path="/app"), b"")
    assert environ["SCRIPT_NAME"] == "/app"
    assert environ["PATH_INFO"] == "/caf\u00e9".encode().decode("latin-1")
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"


def test_an_oversized_body_is_drained_but_only_the_limit_kept(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    behind = Recorder()
    headers = [(b"host", b"x"), (b"content-length", b"30")]
    chunks = [body(b"x" * 8, more=True), body(b"y" * 8, more=True), body(b"z" * 14)]
    sent = run(AsgiServer(behind, threads=1), scope(headers=headers), chunks)
    assert sent[0]["status"] == 201
    assert behind.body == b"x" * 8 + b"y" * 3  # limit + 1: enough to answer 413
    assert behind.environ["CONTENT_LENGTH"] == "30"


def test_a_body_announced_beyond_the_drain_limit_is_not_read(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    behind = Recorder()
    headers = [(b"host", b"x"), (b"content-length", str(DRAIN_BYTES + 1).encode())]
    # receive() would hang if called: the app must answer without reading.
    sent = run(AsgiServer(behind, threads=1), scope(headers=headers), [])
    assert sent[0]["status"] == 201
    assert behind.body == b""


def test_an_endless_unannounced_body_is_read_only_up_to_the_drain_limit(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    behind = Recorder()
    flood = [body(b"x" * (1 << 20), more=True) for _ in range(DRAIN_BYTES >> 20)]
    flood.append(body(b"x", more=True))  # one byte past the limit; the body never ends
    run(AsgiServer(behind, threads=1), scope(), flood)
    assert behind.body == b"x" * 11


def test_a_client_gone_before_its_body_gets_no_answer():
    behind = Recorder()
    sent = run(AsgiServer(behind, threads=1), scope(), [{"type": "http.disconnect"}])
    assert sent == []
    assert behind.environ == {}


def test_an_exception_below_django_is_a_json_500(caplog):
    sent = run(AsgiServer(Recorder(fail=True), threads=1), scope(), [body(b"")])
    assert sent[0]["status"] == 500
    assert sent[1]["body"].startswith(b'{"error":"server_error"')
    assert "unhandled error serving POST /x" in caplog.text


def test_lifespan_completes_and_websockets_are_closed():
    app = AsgiServer(Recorder(), threads=1)
    sent = run(app, {"type": "lifespan"}, LIFESPAN)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    sent = run(AsgiServer(Recorder(), threads=1), {"type": "websocket"}, [])
    assert sent == [{"type": "websocket.close", "code": 1000}]


def token_request(credentials: Any) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The body and headers of a client_secret_post token request."""
    form = urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": credentials.client_id,
            "client_secret": credentials.secret,
        }
    ).encode()
    return form, [(b"host", b"localhost"), (b"content-type", b"application/x-www-form-urlencoded")]


def test_header_values_are_sent_without_surrounding_spaces():
    """Django's Set-Cookie values start with a space; h11 (uvicorn) drops such an answer."""

    def app(environ: dict, start_response: Any) -> list[bytes]:
        start_response(
            "200 OK", [("Set-Cookie", " csrftoken=abc; Path=/"), ("X-Padded", "\tvalue  ")]
        )
        return [b""]

    sent = run(AsgiServer(app, threads=1), scope(), [body(b"")])
    assert sent[0]["headers"] == [
        (b"set-cookie", b"csrftoken=abc; Path=/"),
        (b"x-padded", b"value"),
    ]


@pytest.mark.django_db(transaction=True)
def test_token_requests_are_answered_on_the_event_loop_and_the_rest_in_threads(guide_client):
    behind = Recorder()
    fast = TokenFastPath(behind)
    app = AsgiServer(fast, threads=1, fast_path=fast)
    form, headers = token_request(guide_client)
    # The first request runs argon2, in the pool; the secret is verified from then on.
    assert run(app, scope(path="/oauth/token", headers=headers), [body(form)])[0]["status"] == 200
    # Hold the pool's only thread: a token request sent there would wait for it (and time out).
    release = threading.Event()
    app.pool.submit(release.wait, 20)
    try:
        sent = run(app, scope(path="/oauth/token", headers=headers), [body(form)])
    finally:
        release.set()
    assert sent[0]["status"] == 200, sent
    assert b"access_token" in sent[1]["body"]
    assert behind.environ == {}
    # A token request the fast path does not serve itself (a Host outside ALLOWED_HOSTS) goes
    # to Django, in the pool.
    other = [(b"host", b"evil.example"), headers[1]]
    run(app, scope(path="/oauth/token", headers=other), [body(form)])
    assert behind.thread.startswith("django")
    app.pool.submit(connections.close_all).result()  # the pool thread's own connection
    run(app, {"type": "lifespan"}, LIFESPAN)  # closes the loop's own


@pytest.mark.django_db(transaction=True)
def test_token_requests_on_the_loop_share_one_database_connection(guide_client):
    """Inside a running loop Django's connections are per task (asgiref): without the server's
    own context, every HTTP connection would open a database connection and leak it."""
    opened: list[object] = []

    def count(sender: Any, connection: Any, **kwargs: Any) -> None:
        opened.append(connection)

    app = fast_server(Recorder(), threads=1, warm_up=warm_up)
    form, headers = token_request(guide_client)
    # The secret's first check (argon2) runs in the pool, on that thread's own connection.
    assert run(app, scope(path="/oauth/token", headers=headers), [body(form)])[0]["status"] == 200
    app.pool.submit(connections.close_all).result()
    connection_created.connect(count)
    try:
        for _ in range(5):  # each run is a new loop and task, as each HTTP connection is
            sent = run(app, scope(path="/oauth/token", headers=headers), [body(form)])
            assert sent[0]["status"] == 200
        # The warm-up at start-up uses the same connection; the shutdown closes it.
        run(app, {"type": "lifespan"}, LIFESPAN)
    finally:
        connection_created.disconnect(count)
    assert len(opened) == 1
    assert not app.token_context.run(lambda: asyncio.run(_initialized_connections()))


def test_an_error_page_started_after_a_first_start_response_replaces_it():
    def app(environ: dict, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("late failure")
        except ValueError:
            start_response("500 Internal Server Error", [("X-Error", "1")], sys.exc_info())
        return [b"error page"]

    sent = run(AsgiServer(app, threads=1), scope(), [body(b"")])
    assert sent[0]["status"] == 500
    assert sent[0]["headers"] == [(b"x-error", b"1")]
    assert sent[1]["body"] == b"error page"


@pytest.mark.django_db(transaction=True)
def test_a_token_request_that_must_run_argon2_waits_for_the_pool_not_the_loop(guide_client):
    """argon2 holds a thread 20-40 ms: a secret not yet verified is checked in the pool, so the
    loop goes on answering the verified ones meanwhile."""
    forget_verified_secrets()
    app = fast_server(Recorder(), threads=1)
    form, headers = token_request(guide_client)
    token_scope = scope(path="/oauth/token", headers=headers)

    async def request() -> list[dict]:
        sent: list[dict] = []
        messages = [body(form)]

        async def receive() -> dict:
            if messages:
                return messages.pop(0)
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        await app(token_scope, receive, send)
        return sent

    async def main() -> list:
        release = threading.Event()
        app.pool.submit(release.wait, 20)  # the pool's only thread is busy
        cold = asyncio.create_task(request())
        await asyncio.sleep(0.5)
        waited_for_the_pool = not cold.done()
        release.set()
        first = await cold
        release = threading.Event()
        app.pool.submit(release.wait, 20)
        try:  # verified now: answered on the loop while the pool is still busy
            second = await asyncio.wait_for(request(), 10)
        finally:
            release.set()
        return [waited_for_the_pool, first[0]["status"], second[0]["status"]]

    assert asyncio.run(main()) == [True, 200, 200]
    app.pool.submit(connections.close_all).result()  # the pool thread's own connection
    run(app, {"type": "lifespan"}, LIFESPAN)  # closes the loop's own


@pytest.mark.django_db(transaction=True)
def test_a_secret_sent_on_many_connections_at_once_is_checked_once(guide_client, monkeypatch):
    """The first request takes argon2 to the pool; the others wait for it, then are answered
    on the loop from the verification cache."""
    from oauth import keys

    # The signing key exists first, as after `bootstrap`. Otherwise the first request makes it
    # (a slow RSA key generation inside a write transaction), and a request that finds the
    # secret verified meanwhile, answered on the loop, fails on the test database's in-memory
    # SQLite, which cannot wait for a lock ("database table is locked", 503): a flake seen in
    # CI about one run in four under -n 2.
    keys.ensure_signing_key()
    forget_verified_secrets()
    checks: list[str] = []
    real_check = authenticate.check_secret

    def counted(secret: str, hashed: str) -> bool:
        checks.append(hashed)
        return real_check(secret, hashed)

    monkeypatch.setattr(authenticate, "check_secret", counted)
    app = fast_server(Recorder(), threads=4)
    form, headers = token_request(guide_client)

    async def request() -> int:
        sent: list[dict] = []
        messages = [body(form)]

        async def receive() -> dict:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        await app(scope(path="/oauth/token", headers=headers), receive, send)
        return sent[0]["status"]

    async def main() -> list[int]:
        return await asyncio.gather(*[request() for _ in range(8)])

    assert asyncio.run(main()) == [200] * 8
    assert len(checks) == 1
    for _ in range(4):  # the pool threads' own connections
        app.pool.submit(connections.close_all).result()
    run(app, {"type": "lifespan"}, LIFESPAN)


async def _answer_or_wait(app: AsgiServer, headers: list, form: bytes) -> tuple[bool, int]:
    """Send one token request while the pool's only thread is held: (answered while the pool
    was busy, i.e. on the loop; its status once the pool is free)."""
    sent: list[dict] = []
    messages = [body(form)]

    async def receive() -> dict:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    release = threading.Event()
    app.pool.submit(release.wait, 20)
    task = asyncio.create_task(app(scope(path="/oauth/token", headers=headers), receive, send))
    try:
        await asyncio.wait([task], timeout=0.5)
        on_loop = task.done()
    finally:
        release.set()
    await asyncio.wait_for(task, 10)
    return on_loop, sent[0]["status"]


def _decoys(client_id: str, secret: str) -> dict[str, tuple[bytes, int]]:
    grant = b"grant_type=client_credentials&"
    known = client_id.encode()
    return {
        "assertion name as a value": (
            grant + b"client_id=" + known + b"&client_secret=wrong&x=client_assertion",
            401,
        ),
        "encoded secret name": (grant + b"client_id=" + known + b"&client%5Fsecret=wrong", 401),
        "encoded names": (grant + b"client%5Fid=" + known + b"&client%5Fsecret=wrong", 401),
        "duplicate secret": (
            grant + b"client_id=" + known + b"&client_secret=w&client_secret=" + secret.encode(),
            400,
        ),
        "private_key_jwt": (
            grant
            + b"client_id="
            + known
            + b"&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type"
            + b"%3Ajwt-bearer&client_assertion=a.b.c",
            401,
        ),
        "no secret": (grant + b"client_id=" + known, 401),
        "unknown client": (grant + b"client_id=m2m_nobody&client_secret=wrong", 401),
        # The control: the verified secret, however encoded, is answered on the loop.
        "verified secret, encoded name": (
            grant + b"client_id=" + known + b"&client%5Fsecret=" + secret.encode(),
            200,
        ),
    }


@pytest.mark.parametrize("case", list(_decoys("x", "y")))
@pytest.mark.django_db(transaction=True)
def test_only_a_verified_secret_is_answered_on_the_loop_whatever_the_body(guide_client, case):
    """The loop answers only what the endpoint will check as a secret this process verified;
    a decoy (an assertion's name as a value, an encoded name, a duplicate), an assertion, a
    missing secret or an unknown client waits for the pool, where argon2 or the database may
    run without stalling the loop."""
    forget_verified_secrets()
    app = fast_server(Recorder(), threads=1)
    form, headers = token_request(guide_client)
    assert run(app, scope(path="/oauth/token", headers=headers), [body(form)])[0]["status"] == 200
    decoy, status = _decoys(guide_client.client_id, guide_client.secret)[case]
    on_loop, answered = asyncio.run(_answer_or_wait(app, headers, decoy))
    assert (on_loop, answered) == (status == 200, status)
    app.pool.submit(connections.close_all).result()
    run(app, {"type": "lifespan"}, LIFESPAN)


@pytest.mark.django_db(transaction=True)
def test_synchronous_database_calls_are_allowed_on_the_loop_only_inside_the_scope():
    """DJANGO_ALLOW_ASYNC_UNSAFE is not set for the process: a synchronous database call that
    strays onto the event loop fails loudly, except the deliberate ones (synchronous_on_loop)."""
    assert "DJANGO_ALLOW_ASYNC_UNSAFE" not in os.environ

    def query() -> None:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")

    async def on_the_loop() -> list[str]:
        outcomes = []
        for scoped in (False, True, False):
            try:
                if scoped:
                    with synchronous_on_loop:
                        query()
                else:
                    query()
                outcomes.append("ran")
            except SynchronousOnlyOperation:
                outcomes.append("refused")
        return outcomes

    assert contextvars.Context().run(asyncio.run, on_the_loop()) == ["refused", "ran", "refused"]
    assert "DJANGO_ALLOW_ASYNC_UNSAFE" not in os.environ
