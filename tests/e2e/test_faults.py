"""Faults against real gunicorn processes: a database that goes away, races, a key that won't open.

The database outage needs PostgreSQL (a TCP proxy between the server and PostgreSQL is cut and
restored); the races and the start-up check run on whichever database the suite uses.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from tests.e2e.server import ServerDatabase, ServerProcess, running_server
from tests.serving.helpers import PausableProxy

pytestmark = pytest.mark.e2e

ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[dict]:
    with running_server(
        tmp_path_factory.mktemp("faults"), extra_env={"RATE_LIMIT_API": "100000/m"}
    ) as server:
        headers = server.management("faults").headers
        org = requests.post(
            f"{server.url}/api/v1/organizations",
            json={"display_name": "Faults"},
            headers=headers,
            timeout=10,
        ).json()["organization"]
        yield {"server": server, "headers": headers, "org": org}


def new_client(served: dict) -> dict:
    url = f"{served['server'].url}/api/v1/organizations/{served['org']['id']}/clients"
    response = requests.post(url, json={"name": "racer"}, headers=served["headers"], timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["client"]


def test_concurrent_add_secret_never_exceeds_five(served):
    client = new_client(served)  # it has one secret already
    url = (
        f"{served['server'].url}/api/v1/organizations/{served['org']['id']}"
        f"/clients/{client['client_id']}/secrets"
    )

    def add(_: int) -> int:
        return requests.post(url, headers=served["headers"], timeout=30).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(add, range(12)))
    assert all(status in (201, 400) for status in statuses), statuses
    assert statuses.count(201) == 4, statuses
    listed = requests.get(url, headers=served["headers"], timeout=10).json()["secrets"]
    assert len(listed) == 5


def test_concurrent_deletes_of_one_secret_answer_cleanly(served):
    client = new_client(served)
    base = (
        f"{served['server'].url}/api/v1/organizations/{served['org']['id']}"
        f"/clients/{client['client_id']}/secrets"
    )
    added = requests.post(base, headers=served["headers"], timeout=10).json()["secret"]

    def delete(_: int) -> int:
        return requests.delete(
            f"{base}/{added['id']}", headers=served["headers"], timeout=30
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(delete, range(8)))
    # A delete that finds the row already gone is a clean no-op (clients.services.secret_delete).
    assert set(statuses) <= {200, 404}, statuses
    gone = requests.get(f"{base}/{added['id']}", headers=served["headers"], timeout=10)
    assert gone.status_code == 404


def test_an_undecryptable_signing_key_stops_start_up(served, tmp_path):
    """The same database, but a key-encryption secret the stored key was not made with."""
    server = served["server"]
    wrong = ServerProcess(
        server.database,
        extra_env={
            **server.extra_env,
            "OAUTH_KEY_ENCRYPTION_KEYS": "another-key-encryption-secret-0123456789",
        },
    )
    # migrate and bootstrap already ran (bootstrap would refuse the key too): start gunicorn only.
    with pytest.raises(RuntimeError) as failed:
        wrong.serve(tmp_path, workers=1)
    log = str(failed.value)
    assert "refusing to start" in log
    assert "cannot be decrypted with OAUTH_KEY_ENCRYPTION_KEYS" in log
    assert "exited early" in log  # the master stopped by itself; it was not killed by a timeout


@pytest.mark.skipif(
    not ON_POSTGRES, reason="the outage is simulated between gunicorn and PostgreSQL"
)
def test_a_database_outage_is_503_json_and_heals_by_itself(tmp_path):
    database = ServerDatabase(tmp_path)
    parts = urlsplit(database.url)
    proxy = PausableProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxied = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    server = ServerProcess(database, extra_env={"DATABASE_URL": proxied})
    try:
        server.start(tmp_path, workers=2)
        management = server.management("faults")
        headers = management.headers
        token_form = {
            "grant_type": "client_credentials",
            "client_id": management.client_id,
            "client_secret": management.client_secret,
        }
        api = f"{server.url}/api/v1/organizations"
        assert requests.get(api, headers=headers, timeout=10).status_code == 200

        proxy.pause()
        for _ in range(6):  # both workers, both paths (token: fast path; API: Django)
            for response in (
                requests.post(f"{server.url}/oauth/token", data=token_form, timeout=30),
                requests.get(api, headers=headers, timeout=30),
            ):
                assert response.status_code == 503, response.text
                assert response.headers["Content-Type"].startswith("application/json")
                assert int(response.headers["Retry-After"]) > 0
                body = response.json()
                assert body.get("error") == "temporarily_unavailable" or body.get("code") == 14

        # Operators learn why: the token endpoint logs the database error (never its query).
        assert "token endpoint: database unavailable: OperationalError" in server.log_text()

        proxy.resume()
        deadline = time.monotonic() + 20
        healed = []
        while time.monotonic() < deadline and len(healed) < 6:
            token = requests.post(f"{server.url}/oauth/token", data=token_form, timeout=30)
            listed = requests.get(api, headers=headers, timeout=30)
            healed = [*healed, 1] if (token.status_code, listed.status_code) == (200, 200) else []
        assert len(healed) == 6, "the server did not recover once the database was back"
    finally:
        server.stop()
        proxy.pause()
        database.drop()


@pytest.mark.skipif(
    not ON_POSTGRES, reason="the stall is simulated between gunicorn and PostgreSQL"
)
def test_a_database_that_stops_answering_is_a_503_in_seconds_not_a_frozen_worker(tmp_path):
    """Every byte between the server and PostgreSQL is dropped and new connections hang (a
    frozen database, or a network that drops packets): token requests get 503 with Retry-After
    in the OAuth error format once OAUTH_TOKEN_DATABASE_TIMEOUT has passed, the worker still
    answers what needs no database, and all heals once the database answers again."""
    database = ServerDatabase(tmp_path)
    parts = urlsplit(database.url)
    proxy = PausableProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxied = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    server = ServerProcess(
        database, extra_env={"DATABASE_URL": proxied, "OAUTH_TOKEN_DATABASE_TIMEOUT": "1"}
    )
    try:
        server.start(tmp_path, workers=1)
        management = server.management("stall")  # its secret is verified by the worker now
        token_form = {
            "grant_type": "client_credentials",
            "client_id": management.client_id,
            "client_secret": management.client_secret,
        }
        api = f"{server.url}/api/v1/organizations"
        assert requests.get(api, headers=management.headers, timeout=10).status_code == 200

        proxy.stall()
        for _ in range(3):
            response = requests.post(f"{server.url}/oauth/token", data=token_form, timeout=30)
            assert response.status_code == 503, response.text
            assert response.headers["Content-Type"] == "application/json"
            assert int(response.headers["Retry-After"]) > 0
            assert response.json() == {
                "error": "temporarily_unavailable",
                "error_description": "try again shortly",
            }
            # Not frozen: what needs no database is answered meanwhile.
            assert requests.get(f"{server.url}/healthz", timeout=30).status_code == 200
        assert "token query batch: no answer from the database in 1 s" in server.log_text()

        proxy.resume()
        deadline = time.monotonic() + 30
        healed = []
        while time.monotonic() < deadline and len(healed) < 4:
            token = requests.post(f"{server.url}/oauth/token", data=token_form, timeout=30)
            listed = requests.get(api, headers=management.headers, timeout=30)
            healed = [*healed, 1] if (token.status_code, listed.status_code) == (200, 200) else []
        assert len(healed) == 4, "the server did not recover once the database was back"
    finally:
        server.stop()
        proxy.pause()
        database.drop()
