"""Usage counts and token quotas across two real servers (issue 20).

Two gunicorn masters (two workers each) share a fresh PostgreSQL database and one Redis. The
per-client counts that every worker keeps in memory add up in the database: each worker writes
them at most once a minute and when it exits (SIGTERM), so a restart loses none. An enforced
quota is shared through Redis: the fourth token of a client with 3 per hour is refused whichever
server it asks. (The next window is tested in-process, with a moved clock: tests/oauth/test_quotas.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis
import requests

from tests.e2e.server import ServerProcess, server_database

pytestmark = pytest.mark.e2e

REDIS_URL = os.environ.get("E2E_USAGE_REDIS_URL", "redis://127.0.0.1:6379/13")


class Server(ServerProcess):
    def __init__(self, database) -> None:
        super().__init__(
            database,
            extra_env={
                "REDIS_URL": REDIS_URL,
                "OAUTH_ISSUER": "http://issuer.usage.test",
                "LOG_LEVEL": "WARNING",
            },
        )

    def token(self, client_id: str, secret: str) -> requests.Response:
        return requests.post(
            self.url + "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
            timeout=10,
        )


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[tuple[Server, Server, object]]:
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        pytest.skip("two servers need a shared PostgreSQL database: set DATABASE_URL")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    tmp = tmp_path_factory.mktemp("usage-servers")
    with server_database(tmp) as database:
        a, b = Server(database), Server(database)
        try:
            a.prepare()
            yield a.serve(tmp), b.serve(tmp), tmp
        finally:
            a.stop()
            b.stop()


def api(server: Server, management, method: str, path: str, body=None) -> requests.Response:
    return requests.request(
        method,
        f"{server.url}/api/v1{path}",
        json=body,
        headers=management.headers,
        timeout=10,
    )


def new_client(server: Server, management) -> tuple[str, str, str]:
    org = api(server, management, "post", "/organizations", {"display_name": "Usage Inc"})
    org_id = org.json()["organization"]["id"]
    made = api(server, management, "post", f"/organizations/{org_id}/clients", {"name": "bot"})
    assert made.status_code == 201, made.text
    return org_id, made.json()["client"]["client_id"], made.json()["plain_secret"]


def test_counts_add_up_across_two_servers_and_a_restart(servers):
    a, b, tmp = servers
    management = a.management("usage")
    org_id, client_id, secret = new_client(a, management)
    for server, times in ((a, 5), (b, 7)):
        for _ in range(times):
            assert server.token(client_id, secret).status_code == 200
    assert b.token(client_id, "wrong-secret").status_code == 401
    # SIGTERM: every worker writes what it counted as it exits.
    a.stop()
    b.stop()
    a.serve(tmp)
    b.serve(tmp)
    management = b.management("usage-after")
    usage = api(b, management, "get", f"/organizations/{org_id}/clients/{client_id}/usage")
    assert usage.status_code == 200, usage.text
    issued = sum(entry["tokens_issued"] for entry in usage.json()["usage"])
    refused = [entry["requests_refused"] for entry in usage.json()["usage"]]
    assert issued == 12
    assert {"invalid_client": 1} in refused
    organization = api(a, management, "get", f"/organizations/{org_id}/usage?granularity=day")
    assert sum(entry["tokens_issued"] for entry in organization.json()["usage"]) == 12


def test_an_enforced_quota_is_shared_by_both_servers(servers):
    a, b, _tmp = servers
    management = a.management("quota")
    org_id, client_id, secret = new_client(a, management)
    path = f"/organizations/{org_id}/clients/{client_id}"
    patched = api(b, management, "patch", path, {"token_quota": {"per_hour": 3}})
    assert patched.status_code == 200, patched.text
    answers = [server.token(client_id, secret) for server in (a, b, a)]
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert [r.headers["RateLimit"].split(";")[1] for r in answers] == ["r=2", "r=1", "r=0"]
    assert all(r.headers["RateLimit-Policy"] == '"hour";q=3;w=3600' for r in answers)
    for server in (b, a):
        refused = server.token(client_id, secret)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"] == "temporarily_unavailable"
        assert refused.json()["error_description"].startswith("token quota exceeded: ")
        assert 0 < int(refused.headers["Retry-After"]) <= 3600
        assert refused.headers["RateLimit"].startswith('"hour";r=0;t=')
