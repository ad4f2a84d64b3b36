"""A leaked secret reported by GitHub to one server is refused by another server process on the
same database at once; the owners get one mail. Two gunicorn masters (two workers each) on one
PostgreSQL database; GitHub's keys on a real local HTTP server, alerts signed with a local
ECDSA P-256 key (OUTBOUND_ALLOW_INSECURE reaches it on 127.0.0.1)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.server import ServerProcess, server_database
from tests.github_scanning import GitHub
from tests.oidc_issuer import local_server

pytestmark = pytest.mark.e2e

SETUP = """
import json
from django.contrib.auth import get_user_model
from clients.models import Membership
from clients.services import Actor, client_create, organization_create
actor = Actor.system("e2e")
org = organization_create(actor=actor, display_name="Leaky Corp")
user = get_user_model().objects.create_user("owner@leaky.test", "owner@leaky.test", "pw-0123456789")
Membership.objects.create(user=user, organization=org, role="owner")
client, secret = client_create(actor=actor, organization=org, name="Deploy bot")
print(json.dumps({"client_id": client.id, "secret": secret}))
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Iterator[tuple[ServerProcess, ServerProcess, GitHub]]:
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        pytest.skip("two servers need a shared PostgreSQL database: set DATABASE_URL=postgres://…")
    tmp = tmp_path_factory.mktemp("secret-scanning")
    mail_dir = tmp / "mail"
    mail_dir.mkdir()
    with local_server() as keys_server, server_database(tmp) as database:
        github = GitHub(keys_server)
        env = {
            "OUTBOUND_ALLOW_INSECURE": "true",
            "GITHUB_SECRET_SCANNING_KEYS_URL": github.keys_url,
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(mail_dir),
            "LOG_LEVEL": "WARNING",
        }
        a = ServerProcess(database, extra_env=env)
        b = ServerProcess(database, extra_env=env)
        try:
            a.prepare()
            yield a.serve(tmp), b.serve(tmp), github
        finally:
            a.stop()
            b.stop()


def token(server: ServerProcess, client_id: str, secret: str) -> requests.Response:
    return requests.post(
        server.url + "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=10,
    )


def test_a_leak_reported_to_one_server_is_refused_by_the_other_at_once(setup):
    a, b, github = setup
    made = json.loads(a.manage("shell", "-c", SETUP).stdout.strip().splitlines()[-1])
    client_id, secret = made["client_id"], made["secret"]
    # Every worker of both servers verified (and remembered) the secret.
    for _ in range(4):
        assert token(a, client_id, secret).status_code == 200
        assert token(b, client_id, secret).status_code == 200
    body = github.alert(secret)
    headers = {
        "Content-Type": "application/json",
        "Github-Public-Key-Identifier": github.sign(body)["HTTP_GITHUB_PUBLIC_KEY_IDENTIFIER"],
        "Github-Public-Key-Signature": github.sign(body)["HTTP_GITHUB_PUBLIC_KEY_SIGNATURE"],
    }
    alert = requests.post(
        a.url + "/oauth/secret-scanning/github", data=body, headers=headers, timeout=10
    )
    assert alert.status_code == 200, a.log_text()[-3000:]
    assert alert.json()[0]["label"] == "true_positive"
    for server in (b, a, b, a):
        refused = token(server, client_id, secret)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"] == "invalid_client"
    # GitHub retries: the same alert to the other server changes nothing more.
    again = requests.post(
        b.url + "/oauth/secret-scanning/github", data=body, headers=headers, timeout=10
    )
    assert again.status_code == 200 and again.json() == alert.json()
    # A forged alert is refused by both.
    forged = {
        **headers,
        "Github-Public-Key-Signature": github.sign(b"[]")["HTTP_GITHUB_PUBLIC_KEY_SIGNATURE"],
    }
    for server in (a, b):
        answer = requests.post(
            server.url + "/oauth/secret-scanning/github", data=body, headers=forged, timeout=10
        )
        assert answer.status_code == 401
    # The outbox worker (a real process) sends the owners one mail, however often it runs.
    a.manage("run_worker", "--once")
    b.manage("run_worker", "--once")
    mails = [p.read_text() for p in sorted(Path(a.env["EMAIL_FILE_PATH"]).glob("*.log"))]
    assert len(mails) == 1, mails
    assert "owner@leaky.test" in mails[0] and "Deploy bot" in mails[0]
    assert "https://github.com/octo/app/blob/abc/config.py" in mails[0]
    assert secret not in mails[0]
