"""Helpers shared across packages: an ASGI scope, a closed port, a database that is down, and
the JSON log lines production would write."""

from __future__ import annotations

import json
import logging
import socket
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
