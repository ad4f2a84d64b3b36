"""Rate limits and lockout (oauth/ratelimit.py): each limit trips, answers as documented, resets.

Every test runs on both stores: the database counter table, and Redis (127.0.0.1:6379) when it
answers. Addresses are random per test so that parallel runs sharing one Redis never meet.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from urllib.parse import urlencode

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from oauth import ratelimit
from oauth.models import RateLimitCounter
from oauth.ratelimit import Rate, parse_rate
from tests.conftest import FORM, PASSWORD, Credentials, make_user, request_token

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.fixture(params=["database", "redis"])
def store(request, settings):
    """Run the test against each store the limiter supports."""
    if request.param == "redis":
        if not _redis_up():
            pytest.skip("Redis is not running on 127.0.0.1:6379")
        settings.REDIS_URL = REDIS_URL
    else:
        settings.REDIS_URL = None
    return request.param


@pytest.fixture
def address() -> str:
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


def wait_for_next_window(period: int = 1) -> None:
    """Sleep until a fresh fixed window of ``period`` seconds has begun."""
    time.sleep(period - (time.time() % period) + 0.05)


def token_from(client: Client, creds: Credentials, secret: str | None, ip: str):
    data = {"grant_type": "client_credentials", "client_id": creds.client_id}
    data["client_secret"] = creds.secret if secret is None else secret
    return client.post("/oauth/token", urlencode(data), content_type=FORM, REMOTE_ADDR=ip)


def assert_locked(response) -> int:
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 60
    body = json.loads(response.content)
    assert body == {
        "error": "temporarily_unavailable",
        "error_description": f"too many failed attempts; retry after {retry_after} s",
    }
    return retry_after


# --- Settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "rate"),
    [
        ("10/m", Rate(10, 60)),
        ("1/s", Rate(1, 1)),
        ("600/h", Rate(600, 3600)),
        (" 5/m ", Rate(5, 60)),
    ],
)
def test_a_rate_is_n_per_second_minute_or_hour(value, rate):
    assert parse_rate(value) == rate


@pytest.mark.parametrize(
    "value", ["", "10", "10/d", "0/m", "-1/m", "1.5/m", "10/min", "m/10", "10 / m", "1e3/s"]
)
def test_anything_else_is_a_configuration_error(value):
    with pytest.raises(ImproperlyConfigured, match="N/s, N/m or N/h"):
        parse_rate(value, "RATE_LIMIT_API")


def test_a_bad_value_in_the_environment_stops_the_settings(monkeypatch):
    from portal.settings import env_rate

    monkeypatch.setenv("RATE_LIMIT_API", "lots")
    with pytest.raises(ImproperlyConfigured, match="RATE_LIMIT_API"):
        env_rate("RATE_LIMIT_API", "600/m")
    monkeypatch.setenv("RATE_LIMIT_API", "20/s")
    assert env_rate("RATE_LIMIT_API", "600/m") == "20/s"


# --- Token endpoint: per client_id ---------------------------------------------------------------


@pytest.mark.django_db
def test_token_failures_lock_the_client_id_and_nobody_else(
    store, settings, client, guide_client, other_client, address
):
    settings.RATE_LIMIT_TOKEN_FAILURES = "3/m"
    for _ in range(3):
        assert token_from(client, guide_client, "wrong", address).status_code == 401
    # Locked: even the right secret is refused without being checked.
    assert_locked(token_from(client, guide_client, None, address))
    assert_locked(token_from(client, guide_client, "wrong", address))
    # Another client from the same address is not affected.
    assert token_from(client, other_client, None, address).status_code == 200


@pytest.mark.django_db
def test_an_unknown_client_id_is_locked_the_same_way(store, settings, client, address):
    settings.RATE_LIMIT_TOKEN_FAILURES = "2/m"
    # A fresh id: the shared Redis keeps counting across runs within the minute.
    unknown = f"m2morg_{secrets.randbelow(10**12)}"
    data = {"grant_type": "client_credentials", "client_id": unknown, "client_secret": "x"}
    for _ in range(2):
        response = client.post(
            "/oauth/token", urlencode(data), content_type=FORM, REMOTE_ADDR=address
        )
        assert response.status_code == 401
    response = client.post("/oauth/token", urlencode(data), content_type=FORM, REMOTE_ADDR=address)
    assert_locked(response)


@pytest.mark.django_db
def test_basic_authentication_failures_count_too(store, settings, client, guide_client, address):
    settings.RATE_LIMIT_TOKEN_FAILURES = "2/m"
    wrong = base64.b64encode(f"{guide_client.client_id}:nope".encode()).decode()
    for _ in range(2):
        response = client.post(
            "/oauth/token",
            "grant_type=client_credentials",
            content_type=FORM,
            HTTP_AUTHORIZATION=f"Basic {wrong}",
            REMOTE_ADDR=address,
        )
        assert response.status_code == 401
    assert_locked(token_from(client, guide_client, None, address))


@pytest.mark.django_db
def test_the_token_lock_resets_when_its_window_ends(store, settings, client, guide_client, address):
    settings.RATE_LIMIT_TOKEN_FAILURES = "2/s"
    wait_for_next_window()
    for _ in range(2):
        assert token_from(client, guide_client, "wrong", address).status_code == 401
    assert assert_locked(token_from(client, guide_client, None, address)) == 1
    wait_for_next_window()
    assert token_from(client, guide_client, None, address).status_code == 200


@pytest.mark.django_db
def test_a_secret_verified_before_the_attack_still_gets_tokens(
    store, settings, client, guide_client, address
):
    """The lock saves argon2 work; a client whose right secret this process knows is not it."""
    settings.RATE_LIMIT_TOKEN_FAILURES = "2/m"
    assert token_from(client, guide_client, None, address).status_code == 200
    for _ in range(3):
        token_from(client, guide_client, "wrong", address)
    assert_locked(token_from(client, guide_client, "wrong", address))
    assert token_from(client, guide_client, None, address).status_code == 200


# --- Token endpoint: per address -----------------------------------------------------------------


@pytest.mark.django_db
def test_token_failures_lock_the_address(store, settings, client, guide_client, address):
    settings.RATE_LIMIT_TOKEN_FAILURES_PER_IP = "3/m"
    for n in range(3):
        data = {
            "grant_type": "client_credentials",
            "client_id": f"m2morg_{n}",
            "client_secret": "x",
        }
        response = client.post(
            "/oauth/token", urlencode(data), content_type=FORM, REMOTE_ADDR=address
        )
        assert response.status_code == 401
    assert_locked(token_from(client, guide_client, None, address))
    # The same client from another address is fine.
    assert token_from(client, guide_client, None, "192.0.2.77").status_code == 200


@pytest.mark.django_db
def test_requests_without_credentials_count_against_the_address(store, settings, client, address):
    settings.RATE_LIMIT_TOKEN_FAILURES_PER_IP = "2/m"
    if 60 - time.time() % 60 < 10:  # the three requests must fall in one fixed minute
        wait_for_next_window(60)
    for _ in range(2):
        response = client.post(
            "/oauth/token", "grant_type=client_credentials", content_type=FORM, REMOTE_ADDR=address
        )
        assert response.status_code == 401
    data = {"grant_type": "client_credentials", "client_id": "m2morg_9", "client_secret": "x"}
    response = client.post("/oauth/token", urlencode(data), content_type=FORM, REMOTE_ADDR=address)
    assert_locked(response)


# --- Token endpoint: the WSGI fast path enforces the same limits ------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_fast_path_locks_too(store, settings, guide_client, other_client, address):
    from portal.serving.fastpath import TokenFastPath
    from tests.serving.test_fastpath import Behind, call, token_environ

    settings.RATE_LIMIT_TOKEN_FAILURES = "2/m"
    app = TokenFastPath(Behind())
    wrong = Credentials(guide_client.client, "wrong")
    for _ in range(2):
        status, _, _ = call(app, token_environ(wrong, REMOTE_ADDR=address))
        assert status.startswith("401")
    status, headers, body = call(app, token_environ(guide_client, REMOTE_ADDR=address))
    assert status == "429 Too Many Requests"
    assert int(headers["Retry-After"]) >= 1
    assert json.loads(body)["error"] == "temporarily_unavailable"
    status, _, _ = call(app, token_environ(other_client, REMOTE_ADDR=address))
    assert status == "200 OK"


# --- Success costs nothing ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_successful_token_request_writes_nothing(settings, client, guide_client, address):
    settings.REDIS_URL = None
    with CaptureQueriesContext(connection) as first:
        assert token_from(client, guide_client, None, address).status_code == 200
    with CaptureQueriesContext(connection) as warm:
        assert token_from(client, guide_client, None, address).status_code == 200
    assert RateLimitCounter.objects.count() == 0
    table = RateLimitCounter._meta.db_table
    # The first request (argon2 runs) reads the lock once; a warm one does not touch it at all.
    assert sum(table in q["sql"] for q in first.captured_queries) == 1
    assert not [q for q in first.captured_queries if f"INTO {table}" in q["sql"].replace('"', "")]
    assert not [q for q in warm.captured_queries if table in q["sql"]]


@pytest.mark.django_db
def test_a_successful_token_request_writes_nothing_to_redis(
    settings, client, guide_client, address
):
    if not _redis_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    settings.REDIS_URL = REDIS_URL
    server = redis.Redis.from_url(REDIS_URL)
    counters = ratelimit.token_failure_counters(guide_client.client_id, address)
    now = time.time()
    for _ in range(3):
        assert token_from(client, guide_client, None, address).status_code == 200
    assert server.exists(*[c.key(now) for c in counters]) == 0
    token_from(client, guide_client, "wrong", address)
    assert server.exists(*[c.key(time.time()) for c in counters]) == 2


@pytest.mark.django_db
def test_a_store_that_is_down_fails_open(settings, client, guide_client, address):
    """A limiter outage must not take the token endpoint down: 401 and 200 as usual."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.RATE_LIMIT_TOKEN_FAILURES = "1/m"
    for _ in range(3):
        assert token_from(client, guide_client, "wrong", address).status_code == 401
    assert token_from(client, guide_client, None, address).status_code == 200


# --- Portal login -------------------------------------------------------------------------------


def login(client: Client, username: str, password: str, ip: str):
    return client.post("/login", {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.django_db
def test_login_failures_lock_the_account(store, settings, address):
    settings.RATE_LIMIT_LOGIN_FAILURES = "2/m"
    # Fresh accounts: the shared Redis keeps counting across runs within the minute.
    run = secrets.token_hex(4)
    victim, bystander = f"victim-{run}@acme.test", f"bystander-{run}@acme.test"
    make_user(victim)
    make_user(bystander)
    browser = Client()
    for _ in range(2):
        response = login(browser, victim, "guess", address)
        assert response.status_code == 200
        assert b"Please enter a correct" in response.content
    response = login(browser, victim, PASSWORD, address)
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert b"Too many failed log-in attempts" in response.content
    assert "_auth_user_id" not in browser.session
    # Case does not dodge the lock (usernames are e-mail addresses).
    assert login(Client(), victim.upper(), PASSWORD, "192.0.2.5").status_code == 429
    # Another account, same address: fine.
    assert login(Client(), bystander, PASSWORD, address).status_code == 302


@pytest.mark.django_db
def test_login_failures_lock_the_address_at_ten_times_the_limit(store, settings, address):
    settings.RATE_LIMIT_LOGIN_FAILURES = "1/m"
    run = secrets.token_hex(4)
    someone = f"someone-{run}@acme.test"
    make_user(someone)
    for n in range(10):
        assert login(Client(), f"nobody{n}-{run}@acme.test", "guess", address).status_code == 200
    response = login(Client(), someone, PASSWORD, address)
    assert response.status_code == 429
    assert login(Client(), someone, PASSWORD, "192.0.2.9").status_code == 302


@pytest.mark.django_db
def test_the_login_lock_resets(store, settings, address):
    settings.RATE_LIMIT_LOGIN_FAILURES = "1/s"
    make_user("victim@acme.test")
    wait_for_next_window()
    assert login(Client(), "victim@acme.test", "guess", address).status_code == 200
    assert login(Client(), "victim@acme.test", PASSWORD, address).status_code == 429
    wait_for_next_window()
    assert login(Client(), "victim@acme.test", PASSWORD, address).status_code == 302


# --- Management API -----------------------------------------------------------------------------


def api_get(client: Client, token: str):
    return client.get("/api/v1/organizations", HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.mark.django_db
def test_the_api_limit_trips_and_resets(store, settings, client, management):
    settings.RATE_LIMIT_API = "3/s"
    token = request_token(client, management).json()["access_token"]
    wait_for_next_window()
    for _ in range(3):
        assert api_get(client, token).status_code == 200
    response = api_get(client, token)
    assert response.status_code == 429
    assert response["Retry-After"] == "1"
    assert response.json() == {
        "code": 8,
        "message": "too many requests; retry after 1 s",
        "details": [{"error_code": "RESOURCE_EXHAUSTED"}],
    }
    wait_for_next_window()
    assert api_get(client, token).status_code == 200


@pytest.mark.django_db
def test_the_api_limit_is_per_management_client(store, settings, client, management):
    from clients.services import management_client_create
    from tests.conftest import SYSTEM

    settings.RATE_LIMIT_API = "2/m"
    other, other_secret = management_client_create(actor=SYSTEM, name="other")
    token = request_token(client, management).json()["access_token"]
    other_token = request_token(client, Credentials(other, other_secret)).json()["access_token"]
    for _ in range(2):
        assert api_get(client, token).status_code == 200
    assert api_get(client, token).status_code == 429
    assert api_get(client, other_token).status_code == 200
