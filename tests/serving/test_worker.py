"""``manage.py run_worker`` as a real process: it sends the mails of the outbox through the
configured backend, and SIGTERM stops it gracefully (exit status 0, its summary printed)."""

from __future__ import annotations

import signal
import sys
import time

import pytest

from tests.e2e.server import ServerProcess, server_database, spawn

pytestmark = pytest.mark.e2e

ENQUEUE = (
    "from clients.services import email_enqueue, password_reset_request\n"
    "email_enqueue(to=['ops@x.test'], template='portal/email/signup_existing',"
    " context={'email': 'ops@x.test', 'login_link': 'L', 'reset_link': 'R'})\n"
    "password_reset_request(email='nobody@x.test')\n"
)


def test_the_worker_process_sends_mail_and_stops_gracefully_on_sigterm(tmp_path):
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    with server_database(tmp_path) as database:
        server = ServerProcess(
            database,
            extra_env={
                "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
                "EMAIL_FILE_PATH": str(mail_dir),
            },
        )
        server.manage("migrate", "--noinput")
        server.manage("shell", "-c", ENQUEUE)
        log = tmp_path / "worker.log"
        env = {k: v for k, v in server.env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        worker = spawn(
            [sys.executable, "manage.py", "run_worker", "--interval", "0.2"],
            env=env,
            log_path=log,
            ready=lambda: "outbox worker started" in log.read_text(),
        )
        try:
            server.manage("shell", "-c", ENQUEUE)  # more work while it runs
            for _ in range(300):  # until both mails are out (30 s at most)
                if len(list(mail_dir.glob("*.log"))) >= 2:
                    break
                time.sleep(0.1)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0, log.read_text()
        finally:
            if worker.poll() is None:
                worker.kill()
        output = log.read_text()
        assert "outbox: 4 done, 0 failed" in output, output
        mails = [p.read_text() for p in mail_dir.glob("*.log")]
        assert len(mails) == 2 and all("To: ops@x.test" in m for m in mails)
        assert "nobody@x.test" not in "".join(mails)  # no account: nothing sent
