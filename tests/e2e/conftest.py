"""A real server process for end-to-end and browser tests, with its own database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.e2e.server import ROOT, ServerDatabase, free_port, spawn, terminate


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


@pytest.fixture(scope="session")
def live_server_process(tmp_path_factory) -> Iterator[LiveServer]:
    """``manage.py runserver`` on a free port: migrated, bootstrapped (the guide's API seeded)."""
    tmp = tmp_path_factory.mktemp("live")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    mail_dir = tmp / "mail"
    mail_dir.mkdir()
    database = ServerDatabase(tmp)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DEBUG": "true",
        "DATABASE_URL": database.url,
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
    process = spawn(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        env=env,
        log_path=tmp / "server.log",
        ready=lambda: bool(requests.get(f"{url}/.well-known/jwks.json", timeout=1)),
    )
    try:
        yield server
    finally:
        terminate(process)
        database.drop()


SCREENSHOTS = ROOT / "test-results" / "screenshots"


def pytest_terminal_summary(terminalreporter) -> None:
    if SCREENSHOTS.is_dir() and any(SCREENSHOTS.glob("*.png")):
        terminalreporter.write_line(f"portal screenshots: {SCREENSHOTS}")
