"""A real server process for the browser tests, with its own database, shared by the session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.server import ROOT, ServerDatabase, ServerProcess, server_database


class LiveServer(ServerProcess):
    """``manage.py runserver`` with DEBUG on (it serves the static files) and mail in files."""

    def __init__(self, database: ServerDatabase, mail_dir: Path) -> None:
        super().__init__(
            database,
            extra_env={
                "DEBUG": "true",
                "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
                "EMAIL_FILE_PATH": str(mail_dir),
            },
        )
        self.mail_dir = mail_dir

    def mails(self) -> list[str]:
        """The mails sent so far, after the outbox worker ran once (``run_worker --once``,
        a real process on this server's database)."""
        self.manage("run_worker", "--once")
        return [p.read_text() for p in sorted(self.mail_dir.glob("*.log"))]


@contextmanager
def live_server(tmp_path_factory, name: str, **env: str) -> Iterator[LiveServer]:
    """``manage.py runserver`` on a free port, on a database of its own: migrated, bootstrapped
    (the guide's API seeded), with ``env`` added to its environment."""
    tmp = tmp_path_factory.mktemp(name)
    mail_dir = tmp / "mail"
    mail_dir.mkdir()
    with server_database(tmp) as database:
        server = LiveServer(database, mail_dir)
        server.env.update(env)
        try:
            yield server.prepare("--demo").serve(tmp, runserver=True)
        finally:
            server.stop()


@pytest.fixture(scope="session")
def live_server_process(tmp_path_factory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory, "live") as server:
        yield server


SCREENSHOTS = ROOT / "test-results" / "screenshots"


def pytest_terminal_summary(terminalreporter) -> None:
    if SCREENSHOTS.is_dir() and any(SCREENSHOTS.glob("*.png")):
        terminalreporter.write_line(f"portal screenshots: {SCREENSHOTS}")
