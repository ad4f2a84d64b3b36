"""The token endpoint and the secret format: a secret that carries our prefix but is malformed
or has a wrong checksum is refused before any lookup (and counted as a failure); a secret of
the old format still works, and gets its keyed lookup on its next verification."""

from __future__ import annotations

import pytest
import redis
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clients.models import ClientSecret, hash_secret, secret_lookup
from clients.services import secret_report_leak
from oauth.token.authenticate import forget_verified_secrets
from tests.conftest import SYSTEM, Credentials, post_form, request_token

REDIS_URL = "redis://127.0.0.1:6379/11"  # a database of its own
pytestmark = pytest.mark.django_db


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def wrong_checksum(secret: str) -> str:
    return secret[:-1] + ("A" if secret[-1] != "A" else "B")


def token_with(client, creds: Credentials, secret: str, ip: str = "10.9.8.7"):
    data = {
        "grant_type": "client_credentials",
        "client_id": creds.client_id,
        "client_secret": secret,
    }
    return post_form(client, "/oauth/token", data, REMOTE_ADDR=ip)


@pytest.mark.parametrize(
    "mangle",
    [wrong_checksum, lambda s: s[:-2], lambda s: s + "0", lambda s: s[:10] + "-" + s[11:]],
    ids=["wrong-checksum", "too-short", "too-long", "bad-character"],
)
def test_a_miswritten_secret_costs_no_query_with_redis(client, guide_client, settings, mangle):
    if not _redis_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    settings.REDIS_URL = REDIS_URL
    with CaptureQueriesContext(connection) as queries:
        response = token_with(client, guide_client, mangle(guide_client.secret))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert len(queries) == 0, [q["sql"] for q in queries]


def test_with_the_database_store_only_the_failure_counter_is_written(
    client, guide_client, settings
):
    settings.REDIS_URL = None
    with CaptureQueriesContext(connection) as queries:
        response = token_with(client, guide_client, wrong_checksum(guide_client.secret))
    assert response.status_code == 401
    sqls = [q["sql"].lower() for q in queries]
    # The counter's upsert (in a savepoint inside the test's transaction) and nothing else.
    counted = [sql for sql in sqls if "savepoint" not in sql]
    assert counted and all("ratelimitcounter" in sql for sql in counted), sqls
    assert not any("clientsecret" in sql or "apiclient" in sql for sql in sqls)


@pytest.mark.parametrize("store", ["database", "redis"])
def test_a_miswritten_secret_counts_as_a_failure(client, guide_client, settings, store):
    if store == "redis":
        if not _redis_up():
            pytest.skip("Redis is not running on 127.0.0.1:6379")
        settings.REDIS_URL = REDIS_URL
    else:
        settings.REDIS_URL = None
    settings.RATE_LIMIT_TOKEN_FAILURES = "2/h"
    ip = f"10.77.{id(store) % 250}.{len(store)}"
    for _ in range(2):
        assert (
            token_with(client, guide_client, wrong_checksum(guide_client.secret), ip).status_code
            == 401
        )
    # The client_id from this address is now over its failure limit, right secret or not.
    assert token_with(client, guide_client, guide_client.secret, ip).status_code == 429


def test_a_secret_of_the_old_format_still_works_and_gets_its_lookup(client, guide_client):
    old = "test_" + "Zk3-_q" * 7  # the format before the checksum: no prefix of ours
    secret = ClientSecret.objects.create(
        client=guide_client.client, secret_hash=hash_secret(old), secret_suffix=old[-4:]
    )
    assert secret.lookup_hmac is None
    # Not found before it is used again: nothing to look it up by.
    assert secret_report_leak(actor=SYSTEM, token=old).label == "false_positive"
    creds = Credentials(guide_client.client, old)
    assert request_token(client, creds).status_code == 200
    secret.refresh_from_db()
    assert secret.lookup_hmac == secret_lookup(old)
    # Now a report finds it, and it is refused at once.
    found = secret_report_leak(actor=SYSTEM, token=old, url="https://paste.example/1")
    assert (found.label, found.secret_id) == ("true_positive", secret.id)
    assert request_token(client, creds).status_code == 401


def test_success_writes_no_lookup_once_it_is_stored(client, guide_client):
    assert request_token(client, guide_client).status_code == 200
    forget_verified_secrets()  # argon2 runs again: the lookup is there, nothing is written
    with CaptureQueriesContext(connection) as queries:
        assert request_token(client, guide_client).status_code == 200
    assert not any("lookup_hmac =" in q["sql"] for q in queries)
    # (The database rate-limit store gives back the failure slot it reserved: not a secret's.)
    updates = [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith("UPDATE") and "ratelimitcounter" not in q["sql"]
    ]
    assert not updates, updates
