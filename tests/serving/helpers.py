"""Helpers shared across packages: an ASGI scope, a closed port, a database that is down, a TCP
proxy that can cut or stall a database, and the JSON log lines production would write."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.db import connections

from portal.lib.logs import JsonFormatter


def scope(path: str = "/x", method: str = "POST", headers: list | None = None, **extra: Any):
    """An ASGI HTTP scope, as gunicorn's asgi worker passes it."""
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"a=1&b=%20",
        "root_path": "",
        "scheme": "http",
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("10.0.0.7", 5555),
        "headers": headers if headers is not None else [(b"host", b"127.0.0.1:8000")],
        **extra,
    }


def closed_port() -> int:
    """A local TCP port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def database_down(tmp_path: Path) -> Iterator[None]:
    """Point the default connection at a database that cannot be reached, then restore it.

    A real connection attempt fails: PostgreSQL at a closed port, SQLite in a directory
    that does not exist.
    """
    original = connections["default"]
    broken = dict(original.settings_dict)
    if original.vendor == "sqlite":
        broken["NAME"] = str(tmp_path / "no-such-directory" / "db.sqlite3")
    else:
        broken["HOST"], broken["PORT"] = "127.0.0.1", str(closed_port())
    wrapper = original.__class__(broken, alias="default")
    connections["default"] = wrapper
    try:
        yield
    finally:
        connections["default"] = original
        wrapper.close()


class PausableProxy:
    """A TCP proxy to ``upstream`` that can be cut (``pause``: connections dropped, new ones
    refused) or stalled (``stall``: every byte dropped and new connections accepted but never
    answered, as a database behind a network that drops packets, or a frozen server, looks)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = closed_port()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.stalled = threading.Event()
        self.resume()

    def resume(self) -> None:
        """Forward again. After a stall, the stalled connections are dropped first: their
        streams lost bytes, so their clients must reconnect."""
        if self.stalled.is_set():
            self.pause()
        if self.listener is not None:
            return
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stall(self) -> None:
        self.stalled.set()

    def pause(self) -> None:
        self.stalled.clear()
        if self.listener is not None:
            # shutdown() first: close() alone does not wake the thread blocked in accept().
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
            self.listener = None
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.stalled.is_set():
                with self.lock:
                    self.sockets.append(client)  # held open, never answered
                continue
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if not self.stalled.is_set():
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            # shutdown() first: close() alone does not end the other pump's recv() on the same
            # socket, and the far end would never learn that this one is gone.
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


class JsonLines(logging.Handler):
    """Collects records formatted exactly as production writes them."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def parsed(self) -> list[dict]:
        return [json.loads(line) for line in self.lines]


@contextmanager
def captured_json(logger_name: str = "") -> Iterator[JsonLines]:
    logger = logging.getLogger(logger_name)
    handler = JsonLines()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
