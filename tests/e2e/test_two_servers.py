"""Two stateless servers on one PostgreSQL and one Redis behave as one.

Two gunicorn masters (two workers each, like production) on free ports share a
fresh PostgreSQL database. What one of them (or a management command) changes,
the other serves at once: tokens verify with either JWKS, a revoked secret is
refused everywhere, a rotated key is published and used by both. The figures of
/metrics add up across one master's workers.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
import redis
import requests
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from m2m_auth_kit.client import ClientCredentials
from tests.dpop_proofs import ProofKey
from tests.e2e.server import ServerDatabase, ServerProcess, server_database

pytestmark = pytest.mark.e2e

ISSUER = "http://issuer.e2e.test"
AUDIENCE = f"{ISSUER}/api/v1"
METRICS_TOKEN = "e2e-metrics-token-0123456789"
REDIS_URL = os.environ.get("E2E_REDIS_URL", "redis://127.0.0.1:6379/14")


class Server(ServerProcess):
    """One of the two servers, with its own metrics directory, and a client for the tests."""

    def __init__(self, database: ServerDatabase, metrics_dir: Path) -> None:
        super().__init__(
            database,
            extra_env={
                "REDIS_URL": REDIS_URL,
                "OAUTH_ISSUER": ISSUER,  # one issuer, as behind one load balancer
                "METRICS_BEARER_TOKEN": METRICS_TOKEN,
                "LOG_LEVEL": "WARNING",
                "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
                # DPoP nonces on: a nonce one server gives must be good at the other.
                "OAUTH_DPOP_NONCE_REQUIRED": "true",
            },
        )
        self.metrics_dir = metrics_dir

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kwargs)

    def token(self, client_id: str, secret: str) -> requests.Response:
        return requests.post(
            self.url + "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
            timeout=10,
        )

    def jwks(self) -> dict:
        response = self.get("/.well-known/jwks.json")
        assert response.status_code == 200
        return response.json()

    def metrics(self) -> dict[tuple[str, tuple], float]:
        response = self.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert response.status_code == 200, response.text
        samples = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[tuple[Server, Server]]:
    """Two servers on a fresh database (they cannot see a test's transaction) and one Redis."""
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        pytest.skip(
            "two servers need a shared PostgreSQL database: set DATABASE_URL=postgres://… "
            "(SQLite cannot be shared safely by servers on several machines)"
        )
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL} (set E2E_REDIS_URL)")
    tmp = tmp_path_factory.mktemp("two-servers")
    with server_database(tmp) as database:
        a = Server(database, tmp / "metrics-a")
        b = Server(database, tmp / "metrics-b")
        try:
            a.prepare()
            yield a.serve(tmp), b.serve(tmp)
        finally:
            a.stop()
            b.stop()


def new_client(server: Server) -> tuple[str, str]:
    created = json.loads(
        server.manage("create_management_client", "--name", uuid.uuid4().hex).stdout
    )
    return created["client_id"], created["client_secret"]


def verify(token: str, jwks: dict) -> dict:
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next((key for key in jwks["keys"] if key["kid"] == kid), None)
    assert jwk is not None, f"kid {kid} is not published"
    return jwt.decode(
        token, jwt.PyJWK(jwk).key, algorithms=["RS256", "ES256"], audience=AUDIENCE, issuer=ISSUER
    )


def test_both_servers_are_ready_with_redis(servers):
    for server in servers:
        body = server.get("/readyz").json()
        assert body == {
            "status": "ready",
            "checks": {"database": "ok", "signing_key": "ok", "redis": "ok", "static_files": "ok"},
        }


def test_a_token_from_one_verifies_with_the_jwks_of_the_other(servers):
    a, b = servers
    client_id, secret = new_client(a)
    from_a = a.token(client_id, secret)
    from_b = b.token(client_id, secret)
    assert from_a.status_code == from_b.status_code == 200, (from_a.text, from_b.text)
    assert verify(from_a.json()["access_token"], b.jwks())["client_id"] == client_id
    assert verify(from_b.json()["access_token"], a.jwks())["client_id"] == client_id


def test_a_secret_revoked_through_one_is_refused_by_the_other_at_once(servers):
    a, b = servers
    client_id, secret = new_client(a)
    # Both servers (every worker we reach) have verified, and so remembered, the secret.
    for _ in range(4):
        assert a.token(client_id, secret).status_code == 200
        assert b.token(client_id, secret).status_code == 200
    a.manage(
        "shell",
        "-c",
        "from clients.models import ApiClient\n"
        "from clients.services import Actor, secrets_revoke_all\n"
        f"client = ApiClient.objects.get(pk={client_id!r})\n"
        "secrets_revoke_all(actor=Actor.system('e2e'), client=client)",
    )
    for server in (b, a, b, a):
        refused = server.token(client_id, secret)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"] == "invalid_client"


def management_api_answers(server: Server, token: str, times: int = 4) -> list[requests.Response]:
    """``times`` calls of the management API on ``server`` (so every worker of it answers one,
    and would have cached whatever it caches)."""
    return [
        server.get("/api/v1/organizations", headers={"Authorization": f"Bearer {token}"})
        for _ in range(times)
    ]


def assert_refused_token(response: requests.Response) -> None:
    """401 in the API's error format, with the RFC 6750 challenge."""
    assert response.status_code == 401, response.text
    assert response.json()["code"] == 16
    assert response.json()["details"][0]["error_code"] == "UNAUTHENTICATED"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_management_token_revoked_through_one_is_refused_by_the_other_at_once(servers):
    a, b = servers
    management = a.management(uuid.uuid4().hex)
    for server in (a, b):
        assert [r.status_code for r in management_api_answers(server, management.token)] == [
            200
        ] * 4
    revoked = requests.post(
        a.url + "/oauth/revoke",
        data={"token": management.token},
        auth=(management.client_id, management.client_secret),
        timeout=10,
    )
    assert revoked.status_code == 200, revoked.text
    for server in (b, a):
        for response in management_api_answers(server, management.token):
            assert_refused_token(response)
    # A new token of the same client works: the revocation was of that token only.
    fresh = b.access_token(management.client_id, management.client_secret)
    assert all(r.status_code == 200 for r in management_api_answers(a, fresh, times=2))


def test_a_management_token_of_a_client_deleted_through_one_is_refused_by_the_other_at_once(
    servers,
):
    a, b = servers
    management = a.management(uuid.uuid4().hex)
    for server in (a, b):
        assert all(r.status_code == 200 for r in management_api_answers(server, management.token))
    a.manage(
        "shell",
        "-c",
        "from clients.models import ApiClient\n"
        "from clients.services import Actor, client_delete\n"
        f"client = ApiClient.objects.get(pk={management.client_id!r})\n"
        "client_delete(actor=Actor.system('e2e'), client=client)",
    )
    for server in (b, a):
        for response in management_api_answers(server, management.token):
            assert_refused_token(response)


def test_a_key_rotated_through_one_is_published_and_used_by_both(servers):
    a, b = servers
    client_id, secret = new_client(a)
    old_kid = jwt.get_unverified_header(a.token(client_id, secret).json()["access_token"])["kid"]
    before_rotation = b.token(client_id, secret).json()["access_token"]
    output = a.manage("rotate_signing_key").stdout
    new_kid = output.split("new current signing key ")[1].split()[0]
    assert new_kid != old_kid
    for server in (a, b):
        published = {key["kid"] for key in server.jwks()["keys"]}
        # The new key, and the old one for the tokens it signed that are still valid.
        assert {new_kid, old_kid} <= published
    for signer, other in ((a, b), (b, a)):
        for _ in range(3):  # whichever worker answers
            token = signer.token(client_id, secret).json()["access_token"]
            assert jwt.get_unverified_header(token)["kid"] == new_kid
            assert verify(token, other.jwks())["client_id"] == client_id
    assert verify(before_rotation, a.jwks())["client_id"] == client_id


def issued_per_worker(metrics_dir: Path) -> dict[str, float]:
    """Each worker's own count of issued tokens, read from its memory-mapped file."""
    counts: dict[str, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            if json.loads(key)[1] == "oauth_tokens_issued_total":
                counts[path.stem] = counts.get(path.stem, 0.0) + value
    return counts


def test_metrics_add_up_across_the_workers_of_one_server(servers):
    a, _ = servers
    client_id, secret = new_client(a)
    name, labels = "oauth_tokens_issued_total", (("auth_method", "client_secret_basic"),)
    failures = ("oauth_token_failures_total", (("reason", "invalid_client"),))
    before = a.metrics()
    # Concurrent connections keep one sync worker busy, so the other takes the rest; repeat
    # until both workers have issued tokens (one batch almost always suffices).
    issued = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(5):
            codes = list(pool.map(lambda _: a.token(client_id, secret).status_code, range(16)))
            assert codes == [200] * 16
            issued += 16
            if sum(1 for count in issued_per_worker(a.metrics_dir).values() if count) >= 2:
                break
    for _ in range(3):
        assert a.token(client_id, "wrong-secret").status_code == 401
    per_worker = issued_per_worker(a.metrics_dir)
    assert sum(1 for count in per_worker.values() if count) >= 2, per_worker
    after = a.metrics()
    # One scrape, answered by one worker, reports what all workers did.
    assert after[(name, labels)] - before.get((name, labels), 0) == issued
    assert after[(name, labels)] == sum(per_worker.values())
    assert after.get(failures, 0) - before.get(failures, 0) == 3
    assert after[("signing_key_age_seconds", ())] >= 0


def test_failed_attempts_on_both_servers_add_up_to_one_rate_limit(servers):
    """RATE_LIMIT_TOKEN_FAILURES (10/m per client_id and address; here every request comes
    from 127.0.0.1) is counted in the shared Redis."""
    a, b = servers
    client_id, secret = new_client(a)
    other_id, other_secret = new_client(a)
    answers = [(a if i % 2 else b).token(client_id, "wrong").status_code for i in range(10)]
    assert answers == [401] * 10  # five on each server: neither alone reached the limit
    for server in (a, b):
        locked = server.token(client_id, "wrong")
        assert locked.status_code == 429, locked.text
        assert int(locked.headers["Retry-After"]) > 0
        assert locked.json()["error"] == "temporarily_unavailable"
        # Locked for the right secret too from this address (it was never verified), on both.
        assert server.token(client_id, secret).status_code == 429
        # Another client is unaffected.
        assert server.token(other_id, other_secret).status_code == 200


def dpop_token(server: Server, client_id: str, secret: str, proof: str) -> requests.Response:
    return requests.post(
        server.url + "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        headers={"DPoP": proof},
        timeout=10,
    )


def test_a_dpop_nonce_from_one_is_good_at_the_other_and_a_proof_replayed_there_is_refused(
    servers,
):
    """RFC 9449 §8 nonces and §11.1 replay, across two server processes (Redis shared)."""
    a, b = servers
    client_id, secret = new_client(a)
    key = ProofKey.es256()
    htu = f"{ISSUER}/oauth/token"  # the advertised endpoint, as a client reads it in discovery
    first = dpop_token(a, client_id, secret, key.proof("POST", htu))
    assert first.status_code == 400 and first.json()["error"] == "use_dpop_nonce"
    nonce = first.headers["DPoP-Nonce"]

    proof = key.proof("POST", htu, nonce=nonce)
    issued = dpop_token(b, client_id, secret, proof)
    assert issued.status_code == 200, issued.text
    assert issued.json()["token_type"] == "DPoP"
    assert verify(issued.json()["access_token"], a.jwks())["cnf"] == {"jkt": key.jkt}

    replayed = dpop_token(a, client_id, secret, proof)
    assert replayed.status_code == 400, replayed.text
    assert replayed.json()["error"] == "invalid_dpop_proof"
    assert "replayed" in replayed.json()["error_description"]


def test_our_caller_follows_the_nonce_and_gets_a_bound_token(servers):
    """ClientCredentials(dpop=True) against a server that requires nonces: one use_dpop_nonce,
    one retry with the nonce, a DPoP-bound token."""
    a, _b = servers
    client_id, secret = new_client(a)
    credentials = ClientCredentials(a.url + "/oauth/token", client_id, secret, dpop=True)
    claims = verify(credentials.token(), a.jwks())
    assert claims["cnf"] == {"jkt": credentials.dpop_jkt}
