"""Nobody locks a client out by knowing its client_id: real servers, real stores, real attacks.

Two server processes (gunicorn.conf.py) share one database and, in one run, one Redis; in the
other run they count in the database (no ``REDIS_URL``). They trust 127.0.0.1 as their proxy,
so ``X-Forwarded-For`` gives each request the address the test wants. Server A remembers
verified secrets (one worker, so the tests know what it remembers) and is restarted to forget
them, as on a deploy; server B never remembers one (``OAUTH_SECRET_CACHE_SECONDS=0``): every
secret it sees is checked as if its cache had just expired.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests

from tests.e2e.server import ServerProcess, server_database

pytestmark = pytest.mark.e2e

REDIS_URL = "redis://127.0.0.1:6379/13"
PAIR_LIMIT = 3  # RATE_LIMIT_TOKEN_FAILURES: per (client_id, address)
ADDRESS_LIMIT = 6  # RATE_LIMIT_TOKEN_FAILURES_PER_IP


class Server(ServerProcess):
    def token(self, client_id: str, secret: str | None, address: str) -> requests.Response:
        """A token request from ``address``, the secret in the form (none: no secret at all)."""
        form = {"grant_type": "client_credentials", "client_id": client_id}
        if secret is not None:
            form["client_secret"] = secret
        return requests.post(
            f"{self.url}/oauth/token",
            data=form,
            headers={"X-Forwarded-For": address},
            timeout=30,
        )


@pytest.fixture(scope="module", params=["redis", "database"])
def servers(request, tmp_path_factory) -> Iterator[tuple[Server, Server]]:
    env = {
        "TRUSTED_PROXIES": "127.0.0.1",
        "RATE_LIMIT_TOKEN_FAILURES": f"{PAIR_LIMIT}/h",
        "RATE_LIMIT_TOKEN_FAILURES_PER_IP": f"{ADDRESS_LIMIT}/h",
        "LOG_LEVEL": "WARNING",
    }
    if request.param == "redis":
        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        except redis.RedisError:
            pytest.skip(f"no Redis at {REDIS_URL}")
        env["REDIS_URL"] = REDIS_URL
    tmp = tmp_path_factory.mktemp(f"lockout-{request.param}")
    with server_database(tmp) as database:
        a = Server(database, extra_env={**env, "OAUTH_SECRET_CACHE_SECONDS": "300"})
        b = Server(database, extra_env={**env, "OAUTH_SECRET_CACHE_SECONDS": "0"})
        try:
            a.prepare()
            yield a.serve(tmp, workers=1), b.serve(tmp, workers=2)
        finally:
            a.stop()
            b.stop()


def new_client(server: Server) -> tuple[str, str]:
    made = json.loads(server.manage("create_management_client", "--name", uuid.uuid4().hex).stdout)
    return made["client_id"], made["client_secret"]


def fresh_address() -> str:
    """A new address for each actor: IPv4, or a /64 of its own."""
    if secrets.randbits(1):
        return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"
    return f"2001:db8:{secrets.randbits(16):x}:{secrets.randbits(16):x}::{secrets.randbits(16):x}"


def flood(servers: tuple[Server, ...], client_id: str, attacker: str) -> list[int]:
    """Secretless and wrong-secret requests naming ``client_id`` from ``attacker``, on every
    server in turn, well past every limit; the status codes."""
    codes = []
    for _ in range(6):
        for server in servers:
            codes.append(server.token(client_id, None, attacker).status_code)
            codes.append(
                server.token(client_id, "wrong-" + secrets.token_hex(8), attacker).status_code
            )
    return codes


def assert_limited(codes: list[int]) -> None:
    # Both servers count in the one store: the attacker's address got at most its limit of
    # 401s between them, and 429 for the rest, whichever server it asked.
    assert set(codes) == {401, 429}, codes
    assert codes.count(401) <= ADDRESS_LIMIT, codes
    assert codes[-4:] == [429] * 4, codes


def test_floods_never_refuse_the_right_secret_before_or_after_the_cache_expires(servers):
    a, b = servers
    client_id, secret = new_client(a)
    victim = fresh_address()
    assert a.token(client_id, secret, victim).status_code == 200  # now in A's cache
    for attacker in (fresh_address(), fresh_address()):
        assert_limited(flood(servers, client_id, attacker))
        # Cached on A; checked with argon2 on B (its cache holds nothing): both 200.
        for server in (a, b, b):
            answer = server.token(client_id, secret, victim)
            assert answer.status_code == 200, answer.text
        # The attacker's own address is refused before its secret is checked, right or not.
        assert b.token(client_id, secret, attacker).status_code == 429
    # A deploy: A forgets every secret it verified, while the attack goes on.
    a.stop()
    a.serve(a.log_path.parent, workers=1)
    attacker = fresh_address()
    assert_limited(flood(servers, client_id, attacker))
    # A's cache is empty: the right secret from the attacker's address is not even checked.
    assert a.token(client_id, secret, attacker).status_code == 429
    for server in (a, b):
        answer = server.token(client_id, secret, victim)
        assert answer.status_code == 200, answer.text


def test_parallel_wrong_secrets_get_no_more_guesses_than_the_limit(servers):
    """200 wrong secrets at once, on both servers, for one client from one address: each guess
    reserves its slot before argon2 runs, in one step, so exactly the limit got checked (401),
    and every other one was refused unchecked (429)."""
    client_id, secret = new_client(servers[0])
    attacker = fresh_address()

    def guess(n: int) -> int:
        server = servers[n % 2]
        return server.token(client_id, "wrong-" + secrets.token_hex(8), attacker).status_code

    with ThreadPoolExecutor(max_workers=32) as pool:
        codes = list(pool.map(guess, range(200)))
    assert codes.count(401) == PAIR_LIMIT, codes
    assert codes.count(429) == 200 - PAIR_LIMIT, codes
    # Its owner, elsewhere, is not affected.
    assert servers[1].token(client_id, secret, fresh_address()).status_code == 200
