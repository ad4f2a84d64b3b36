"""Real server processes for end-to-end tests.

Each ``ServerDatabase`` is a database of its own: a SQLite file, or, when the
suite runs with a PostgreSQL ``DATABASE_URL``, a fresh PostgreSQL database that
is dropped afterwards. Several ``ServerProcess`` can share one database, the
way several stateless servers share one in production.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "e2e-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn(
    args: list[str],
    *,
    env: dict[str, str],
    log_path: Path,
    ready: Callable[[], bool],
    timeout: float = 30,
) -> subprocess.Popen:
    """Start ``args`` in the project directory, its output in ``log_path``; return once ready.

    ``ready()`` is polled (an HTTP or socket error counts as not ready yet); a process that
    exits, or is not ready in time, fails with the tail of its log.
    """
    with log_path.open("w") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{args[:4]} exited early:\n{log_path.read_text()[-4000:]}")
        try:
            if ready():
                return process
        except (requests.RequestException, OSError):
            pass
        time.sleep(0.1)
    terminate(process)
    raise RuntimeError(f"{args[:4]} did not start:\n{log_path.read_text()[-4000:]}")


def gunicorn_command(bind: str, workers: int, *extra: str) -> list[str]:
    """The production server's command line (gunicorn.conf.py) on ``bind``."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "gunicorn.conf.py",
        "--bind",
        bind,
        "--workers",
        str(workers),
        *extra,
    ]


def terminate(process: subprocess.Popen | None, timeout: float = 10) -> None:
    """Stop a spawned process: politely, then for good."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class ServerDatabase:
    def __init__(self, tmp_dir: Path) -> None:
        base = os.environ.get("DATABASE_URL", "")
        self._pg_admin: str | None = None
        if base.startswith(("postgres://", "postgresql://")):
            name = f"m2m_e2e_{secrets.token_hex(4)}"
            parts = urlsplit(base)
            self._pg_admin = urlunsplit(parts._replace(path="/postgres"))
            self.name = name
            self._psql(f'CREATE DATABASE "{name}"')
            self.url = urlunsplit(parts._replace(path=f"/{name}"))
        else:
            self.url = f"sqlite:///{tmp_dir / 'e2e.sqlite3'}"

    @property
    def is_postgres(self) -> bool:
        return self._pg_admin is not None

    def _psql(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self._pg_admin, autocommit=True) as conn:
            conn.execute(sql)

    def drop(self) -> None:
        if self._pg_admin:
            self._psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class ServerProcess:
    """``gunicorn -c gunicorn.conf.py`` (or runserver) on a free port, with its own environment."""

    def __init__(
        self, database: ServerDatabase, *, extra_env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": database.url,
            "SECRET_KEY": SECRET_KEY,
            "DEBUG": "false",
            "SECURE_SSL_REDIRECT": "false",  # plain HTTP on a local port
            "SECURE_COOKIES": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "OAUTH_ISSUER": self.url,
            "OAUTH_ARGON2_TIME_COST": "1",
            "OAUTH_ARGON2_MEMORY_COST": "1024",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.env.pop("PYTEST_CURRENT_TEST", None)
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def start(self, log_dir: Path, workers: int = 2) -> ServerProcess:
        self.manage("migrate", "--noinput")
        self.manage("bootstrap")
        self.log_path = log_dir / f"server-{self.port}.log"
        self.process = spawn(
            gunicorn_command(f"127.0.0.1:{self.port}", workers, "--access-logfile", "-"),
            env=self.env,
            log_path=self.log_path,
            ready=lambda: bool(requests.get(f"{self.url}/.well-known/jwks.json", timeout=5)),
        )
        return self

    def stop(self) -> None:
        terminate(self.process)

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path else ""


@contextlib.contextmanager
def server_database(tmp: Path) -> Iterator[ServerDatabase]:
    """A database of its own for server processes, dropped afterwards."""
    database = ServerDatabase(tmp)
    try:
        yield database
    finally:
        database.drop()


@contextlib.contextmanager
def running_server(tmp: Path, **kwargs: object) -> Iterator[ServerProcess]:
    """A server on a database of its own, stopped and dropped afterwards (module fixtures)."""
    with server_database(tmp) as database:
        process = ServerProcess(database, **kwargs)
        try:
            yield process.start(tmp)
        finally:
            process.stop()
