"""The ASGI application that ``portal.asgi`` serves: the token fast path on the event loop, and
Django's WSGI application, for every other request, in a pool of threads.

Why our own bridge rather than a library's: the token path must run on the loop with the rows
the batcher read, which no generic WSGI-to-ASGI adapter offers, and asgiref's ``WsgiToAsgi``
runs every request on one thread (bench/README.md has the library we measured and dropped).
What a bridge must do for this project is small: the request body is read on the
loop (at most DATA_UPLOAD_MAX_MEMORY_SIZE + 1 bytes, enough for Django and the token endpoint to
answer 413 themselves), the application runs in a thread, and its whole answer is sent back. No
view of ours streams, and whitenoise's static files are small.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import connections

from oauth.token.authenticate import recently_verified, verification_key
from oauth.token.batching import TokenQueryBatcher
from oauth.token.lookup import Prefetched
from oauth.token.request import OAuthError, TokenRequest
from portal.serving.fastpath import TokenFastPath, WSGIApp


class _SynchronousOnLoop:
    """The scope of the synchronous database calls made on the event loop's thread on purpose.

    Django refuses a database call from a thread that runs an event loop (SynchronousOnlyOperation)
    unless DJANGO_ALLOW_ASYNC_UNSAFE is set. The token fast path, for a secret this process has
    verified already, is the one piece of synchronous code this module runs on the loop (with
    its own context's connection: on SQLite, or when the batch's rows are stale); with the
    start-up warm-up and the shutdown's closing of that connection. Only inside this scope is
    the flag set, so any other synchronous call that strays onto the loop still fails loudly.
    Django's requests run in the pool's threads, which have no loop: the flag changes nothing
    for them. Entered from one loop at a time in production; counted, so tests with several
    loops in threads do not clear it under one another; a flag set by the operator stays."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._owned = False

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._owned = ASYNC_UNSAFE not in os.environ
                if self._owned:
                    os.environ[ASYNC_UNSAFE] = "true"
            self._depth += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._owned:
                del os.environ[ASYNC_UNSAFE]


ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"
synchronous_on_loop = _SynchronousOnLoop()

logger = logging.getLogger("portal.serving.bridge")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]

# How much of a body over DATA_UPLOAD_MAX_MEMORY_SIZE is read (and dropped) before answering 413.
DRAIN_BYTES = 16 * 1024 * 1024

INTERNAL_ERROR: Answer = (
    500,
    [(b"content-type", b"application/json")],
    b'{"error":"server_error","error_description":"internal error"}',
)


def wsgi_environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """The WSGI environ (PEP 3333) of an ASGI HTTP request."""
    root = scope.get("root_path", "")
    path = scope["path"]
    if root and path.startswith(root):
        path = path[len(root) :]
    server = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root.encode("utf-8").decode("latin-1"),
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] or 80),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = str(client[0])
        environ["REMOTE_PORT"] = str(client[1])
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        if name not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = f"HTTP_{name}"
        value = raw_value.decode("latin-1")
        # Repeated headers are joined, as gunicorn's WSGI workers do.
        environ[name] = f"{environ[name]},{value}" if name in environ else value
    return environ


def call_wsgi(app: WSGIApp, environ: dict[str, Any]) -> Answer:
    """Run a WSGI application to the end and return its whole answer."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        # Nothing is sent before the application returns, so a second call (an error page,
        # with exc_info) may always replace the first (PEP 3333).
        started[:] = [status, headers]
        return chunks.append

    chunks: list[bytes] = []
    iterable = app(environ, start_response)
    try:
        chunks.extend(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    status, headers = started
    return int(status[:3]), encode_headers(headers), b"".join(chunks)


def encode_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Header pairs as ASGI wants them (lower-case names, bytes), values without the spaces
    around them.

    Django writes each ``Set-Cookie`` value with a leading space (``cookie.output(header="")``).
    A WSGI server strips it; h11 (uvicorn's HTTP library) refuses such a value and drops the
    connection instead of answering, so every page that sets a cookie failed under uvicorn.
    """
    return [(_header_name(name), value.strip().encode("latin-1")) for name, value in headers]


_HEADER_NAMES: dict[str, bytes] = {}


def _header_name(name: str) -> bytes:
    """A header name as ASGI wants it (lower-case bytes), remembered: answers reuse a few."""
    encoded = _HEADER_NAMES.get(name)
    if encoded is None:
        encoded = name.lower().encode("latin-1")
        if len(_HEADER_NAMES) < 256:
            _HEADER_NAMES[name] = encoded
    return encoded


class AsgiServer:
    """ASGI around ``wsgi_app``: token requests answered by ``fast_path`` on the event loop, the
    rest by ``wsgi_app`` in threads."""

    def __init__(
        self,
        wsgi_app: WSGIApp,
        threads: int,
        *,
        fast_path: TokenFastPath | None = None,
        warm_up: Callable[[], None] | None = None,
        batcher: TokenQueryBatcher | None = None,
    ) -> None:
        self.wsgi_app = wsgi_app
        self.fast_path = fast_path
        self.token_path = fast_path.path if fast_path else None
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="django")
        self.warm_up = warm_up
        # Django keeps database connections in asgiref Locals, which inside a running event loop
        # are per task, that is per HTTP connection here: each would open (and leak) a database
        # connection of its own. The token path runs in this one context instead, so the loop
        # thread keeps one connection, as a WSGI thread does. It never awaits, so the context is
        # never entered twice at once.
        self.token_context = contextvars.Context()
        # On PostgreSQL, token requests that wait at the same time share one query
        # (oauth.token.batching).
        self.batcher = batcher if self.fast_path else None
        # Secrets being verified in the pool (argon2), by their verification-cache key.
        self.verifying: dict[bytes, asyncio.Future] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await self._body(scope, receive)
        if body is None:
            return  # the client went away
        environ = wsgi_environ(scope, body)
        try:
            if scope["path"] == self.token_path and self.fast_path.serves(environ):
                answer = await self._token_request(environ)
            else:
                loop = asyncio.get_running_loop()
                answer = await loop.run_in_executor(self.pool, call_wsgi, self.wsgi_app, environ)
        except Exception:  # Django answers its own errors; this is a bug below it
            logger.exception("unhandled error serving %s %s", scope["method"], scope["path"])
            answer = INTERNAL_ERROR
        status, headers, content = answer
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def _token_request(self, environ: dict[str, Any]) -> Answer:
        """Sign and answer on the loop: one query (shared with the token requests waiting at the
        same time) and one signature, no thread hop, for a secret this process has verified.
        Every other request (and any with a DPoP proof, whose jti is written to the shared
        replay store) goes to the pool: argon2 (a secret not verified yet, or a wrong one)
        holds a thread 20-40 ms, and an assertion, a request without a usable secret or one the
        batch could not answer needs the database (the rate limiter, the client's keys, the
        rows), all of which would stall every other request of this worker.

        The body is parsed here once, as the endpoint parses it, and handed to it: what decides
        where the request runs is exactly what the endpoint then checks."""
        parsed = self.fast_path.parse(environ)
        credentials = parsed.secret if isinstance(parsed, TokenRequest) else None
        if credentials is None or "HTTP_DPOP" in environ:
            # A DPoP proof's jti goes to the shared replay store (Redis or the database).
            return await self._in_pool(environ, None, parsed)
        ahead = None
        if self.batcher is not None:
            ahead = await self.batcher.prefetch(credentials[0])
            if ahead is None:  # the batch could not answer: the synchronous path reads the rows
                return await self._in_pool(environ, None, parsed)
            if ahead.rows is None:  # the database did not answer in time: 503, nothing to wait for
                return self._on_loop(environ, ahead, parsed)
        key = verification_key(*credentials)
        if not recently_verified(key, ahead):
            # A client that opens many connections at once sends its secret many times: one
            # check runs, the others wait for it and are then answered here, on the loop.
            running = self.verifying.get(key)
            if running is not None:
                await asyncio.shield(running)
            if not recently_verified(key, ahead):
                self.verifying[key] = done = asyncio.get_running_loop().create_future()
                try:
                    return await self._in_pool(environ, ahead, parsed)
                finally:
                    if self.verifying.get(key) is done:
                        del self.verifying[key]
                    done.set_result(None)
        return self._on_loop(environ, ahead, parsed)

    def _on_loop(
        self, environ: dict[str, Any], ahead: Prefetched | None, parsed: TokenRequest | OAuthError
    ) -> Answer:
        with synchronous_on_loop:
            return self.token_context.run(self._token, environ, ahead, parsed)

    async def _in_pool(
        self, environ: dict[str, Any], ahead: Prefetched | None, parsed: TokenRequest | OAuthError
    ) -> Answer:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self._token, environ, ahead, parsed)

    def _token(
        self, environ: dict[str, Any], ahead: Prefetched | None, parsed: TokenRequest | OAuthError
    ) -> Answer:
        status, headers, body = self.fast_path.answer(environ, ahead, parsed)
        return status, encode_headers(headers), body

    @staticmethod
    async def _body(scope: Scope, receive: Receive) -> bytes | None:
        """The request body, or its first DATA_UPLOAD_MAX_MEMORY_SIZE + 1 bytes when larger (the
        application answers 413 from that). The rest of a larger body is read and dropped, up to
        DRAIN_BYTES, so that a client still sending gets its answer instead of a reset
        connection; a body announced larger than that is not read at all (the server closes the
        connection after the answer). None when the client disconnected."""
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        cap = None if limit is None else limit + 1
        if cap is not None:
            for name, value in scope.get("headers", []):
                if name == b"content-length" and value.isdigit() and int(value) > DRAIN_BYTES:
                    return b""
        chunks: list[bytes] = []
        kept = size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if chunk and (cap is None or kept < cap):
                if cap is not None:
                    chunk = chunk[: cap - kept]
                chunks.append(chunk)
                kept += len(chunk)
            if not message.get("more_body", False) or (cap is not None and size > DRAIN_BYTES):
                return b"".join(chunks)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.warm_up is not None:
                    try:
                        with synchronous_on_loop:
                            self.token_context.run(self.warm_up)
                    except Exception:  # an unmigrated database must not stop the server
                        logger.exception("warm-up failed; the first request will do it")
                if self.batcher is not None:
                    await self.batcher.connect()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # Inside the running loop, so that it is the token context's connection.
                with synchronous_on_loop:
                    self.token_context.run(connections.close_all)
                if self.batcher is not None:
                    await self.batcher.close()
                self.pool.shutdown(wait=False)
                await send({"type": "lifespan.shutdown.complete"})
                return
