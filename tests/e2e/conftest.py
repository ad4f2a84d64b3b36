"""A real server process for end-to-end and browser tests, with its own database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    mail_dir: Path
    env: dict[str, str]

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return done.stdout

    def mails(self) -> list[str]:
        return [p.read_text() for p in sorted(self.mail_dir.glob("*.log"))]


def _server_database_url(tmp: Path) -> str:
    """PostgreSQL when the suite runs on it (a database of our own), else a SQLite file."""
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith("postgres"):
        import psycopg

        root, _, name = base.rpartition("/")
        # One per xdist worker: two workers may each start a live server in the same run.
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        server_db = f"{name or 'm2m'}_portal_live_{worker}"
        with psycopg.connect(f"{root}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{server_db}"')
            conn.execute(f'CREATE DATABASE "{server_db}"')
        return f"{root}/{server_db}"
    return f"sqlite:///{tmp / 'server.sqlite3'}"


@pytest.fixture(scope="session")
def live_server_process(tmp_path_factory) -> Iterator[LiveServer]:
    """``manage.py runserver`` on a free port: migrated, bootstrapped (the guide's API seeded)."""
    tmp = tmp_path_factory.mktemp("live")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    mail_dir = tmp / "mail"
    mail_dir.mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DEBUG": "true",
        "DATABASE_URL": _server_database_url(tmp),
        "OAUTH_ISSUER": url,
        "OAUTH_ARGON2_TIME_COST": "1",
        "OAUTH_ARGON2_MEMORY_COST": "1024",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        "PYTHONUNBUFFERED": "1",
    }
    server = LiveServer(url=url, mail_dir=mail_dir, env=env)
    server.manage("migrate", "--noinput")
    server.manage("bootstrap", "--demo")
    log = (tmp / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/.well-known/jwks.json", timeout=1)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp / "server.log").read_text()) from None
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


SCREENSHOTS = ROOT / "test-results" / "screenshots"


def pytest_terminal_summary(terminalreporter) -> None:
    if SCREENSHOTS.is_dir() and any(SCREENSHOTS.glob("*.png")):
        terminalreporter.write_line(f"portal screenshots: {SCREENSHOTS}")
