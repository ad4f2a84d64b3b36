"""Real server processes for end-to-end tests, all started one way.

A ``ServerProcess`` is our server with an environment of its own (``child_env`` plus the
production settings a test machine needs: plain HTTP, a test SECRET_KEY, cheap argon2, its URL as
the issuer). ``prepare`` migrates and bootstraps its database, ``serve`` starts gunicorn with
gunicorn.conf.py (or ``runserver``) on a free port and returns once ``/readyz`` answers 200,
``manage`` runs manage.py in the same environment, ``log_text`` and ``wait_for_log`` read what it
wrote, ``stop`` stops it; ``access_token`` and ``management`` get tokens from it. ``running_server``
does all of it for a fixture.

Each ``ServerDatabase`` is a database of its own: a SQLite file, or, when the suite runs with a
PostgreSQL ``DATABASE_URL``, a fresh PostgreSQL database that is dropped afterwards. Several
``ServerProcess`` can share one database, the way several stateless servers share one in
production.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "e2e-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
# Variables of the test process that must not reach a server: pytest's own, the settings module
# of the suite, and a metrics directory that belongs to another process.
NOT_INHERITED = ("DJANGO_", "PYTEST", "PROMETHEUS_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(**overrides: str) -> dict[str, str]:
    """The environment of a child process: ours, minus what belongs to the test run, plus
    unbuffered output (its log is read while it runs) and ``overrides``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(NOT_INHERITED)}
    return {**env, "PYTHONUNBUFFERED": "1", **overrides}


def manage(
    env: dict[str, str], *args: str, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess:
    """``manage.py *args`` in the project directory; a failure shows its output."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result


@functools.cache
def collected_static_root() -> Path:
    """A STATIC_ROOT filled by ``manage.py collectstatic``, once per test process: with DEBUG off
    the server refuses to start without its manifest, as an operator's would."""
    root = Path(tempfile.mkdtemp(prefix="m2m-e2e-static-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    env = child_env(
        DJANGO_SETTINGS_MODULE="portal.settings",
        SECRET_KEY=SECRET_KEY,
        DEBUG="false",
        STATIC_ROOT=str(root),
    )
    manage(env, "collectstatic", "--noinput")
    return root


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
    if process.poll() is not None:  # it stopped while the last probe waited
        raise RuntimeError(f"{args[:4]} exited early:\n{log_path.read_text()[-4000:]}")
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


def get_over_unix_socket(path: Path, target: str) -> bytes:
    """The raw HTTP/1.1 answer to ``GET target`` from a server listening on a Unix socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
        )
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


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


@dataclass
class Management:
    """A management client of a running server, and the bearer token it got there."""

    client_id: str
    client_secret: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class ServerProcess:
    """Our server on a free port of 127.0.0.1, with an environment of its own.

    ``extra_env`` is applied last, so it may change anything (OAUTH_ISSUER, DATABASE_URL, …).
    """

    def __init__(
        self, database: ServerDatabase, *, extra_env: dict[str, str] | None = None
    ) -> None:
        self.database = database
        self.extra_env = dict(extra_env or {})
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.bind = f"127.0.0.1:{self.port}"
        self.env = child_env(
            **{
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
                "STATIC_ROOT": self.extra_env.get("STATIC_ROOT") or str(collected_static_root()),
                **self.extra_env,
            }
        )
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None

    def manage(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess:
        """``manage.py *args`` in this server's environment (its database, its settings).

        Not as one of its workers, though: its metrics stay out of the server's multiprocess
        directory (PROMETHEUS_MULTIPROC_DIR), which holds what the workers counted.
        """
        env = {k: v for k, v in self.env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        return manage(env, *args, check=check, input=input)

    def prepare(self, *bootstrap_args: str) -> Self:
        """Migrate the database and bootstrap it (a signing key; ``--demo`` for demo data)."""
        self.manage("migrate", "--noinput")
        self.manage("bootstrap", *bootstrap_args)
        return self

    def serve(
        self,
        log_dir: Path,
        *,
        workers: int = 2,
        bind: str | None = None,
        runserver: bool = False,
        command: list[str] | None = None,
    ) -> Self:
        """Start the production server (gunicorn.conf.py, with gunicorn's access log), or
        ``manage.py runserver``, or ``command``; return once ``GET /readyz`` answers 200.

        ``bind`` replaces the TCP address, e.g. with ``unix:/path/to.sock``.
        """
        self.bind = bind or self.bind
        self.log_path = log_dir / f"server-{self.port}.log"
        if runserver:
            command = [sys.executable, "manage.py", "runserver", "--noreload", self.bind]
        command = command or gunicorn_command(self.bind, workers, "--access-logfile", "-")
        # Patient: on a busy machine two workers importing Django can take a while to answer.
        self.process = spawn(
            command, env=self.env, log_path=self.log_path, ready=self._ready, timeout=90
        )
        return self

    def _ready(self) -> bool:
        if self.bind.startswith("unix:"):
            answer = get_over_unix_socket(Path(self.bind.removeprefix("unix:")), "/readyz")
            return answer.startswith(b"HTTP/1.1 200")
        return requests.get(f"{self.url}/readyz", timeout=10).status_code == 200

    def start(self, log_dir: Path, workers: int = 2) -> Self:
        """``prepare()``, then ``serve()`` under gunicorn."""
        return self.prepare().serve(log_dir, workers=workers)

    def stop(self) -> None:
        terminate(self.process)

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path else ""

    def wait_for_log(self, text: str, *, count: int = 1, timeout: float = 10) -> str:
        """The log, once ``text`` is in it ``count`` times (the tail of the log if never)."""
        deadline = time.monotonic() + timeout
        while self.log_text().count(text) < count:
            assert time.monotonic() < deadline, self.log_text()[-2000:]
            time.sleep(0.05)
        return self.log_text()

    def access_token(self, client_id: str, client_secret: str, **form: str) -> str:
        """A token for these credentials (client_secret_basic); any answer but 200 fails."""
        response = requests.post(
            f"{self.url}/oauth/token",
            data={"grant_type": "client_credentials", **form},
            auth=(client_id, client_secret),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def management(self, name: str) -> Management:
        """A management client made with ``manage.py create_management_client``, and a token."""
        made = json.loads(self.manage("create_management_client", "--name", name).stdout)
        token = self.access_token(made["client_id"], made["client_secret"])
        return Management(made["client_id"], made["client_secret"], token)


@contextlib.contextmanager
def server_database(tmp: Path) -> Iterator[ServerDatabase]:
    """A database of its own for server processes, dropped afterwards."""
    database = ServerDatabase(tmp)
    try:
        yield database
    finally:
        database.drop()


@contextlib.contextmanager
def running_server(
    tmp: Path, *, extra_env: dict[str, str] | None = None, workers: int = 2
) -> Iterator[ServerProcess]:
    """A prepared server under gunicorn on a database of its own, stopped and dropped
    afterwards (module fixtures, and tests that need a server of their own)."""
    with server_database(tmp) as database:
        process = ServerProcess(database, extra_env=extra_env)
        try:
            yield process.start(tmp, workers=workers)
        finally:
            process.stop()
