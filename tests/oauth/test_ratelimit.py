"""Rate limits and lockout (oauth/ratelimit.py): each limit trips, answers as documented, resets.

Every test runs on both stores: the database counter table, and Redis (127.0.0.1:6379) when it
answers. Addresses are random per test so that parallel runs sharing one Redis never meet.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
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
from oauth.token.authenticate import forget_verified_secrets
from tests.conftest import FORM, PASSWORD, Credentials, make_user, post_form, request_token

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


def random_address() -> str:
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


@pytest.fixture
def address() -> str:
    return random_address()


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
    assert 1 <= retry_after <= 2 * 3600  # two windows of the longest period
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


# --- Token endpoint: per (client_id, address) ----------------------------------------------------


@pytest.mark.django_db
def test_token_failures_lock_the_client_id_at_that_address_and_nowhere_else(
    store, settings, client, guide_client, other_client, address
):
    settings.RATE_LIMIT_TOKEN_FAILURES = "3/m"
    for _ in range(3):
        assert token_from(client, guide_client, "wrong", address).status_code == 401
    # Locked at this address: even the right secret is refused without being checked.
    assert_locked(token_from(client, guide_client, None, address))
    assert_locked(token_from(client, guide_client, "wrong", address))
    # The same client from another address is not: failures never count per client_id alone.
    assert token_from(client, guide_client, None, random_address()).status_code == 200
    assert token_from(client, guide_client, "wrong", random_address()).status_code == 401
    # Another client from the same address is not affected either.
    assert token_from(client, other_client, None, address).status_code == 200


@pytest.mark.django_db
def test_an_unknown_client_id_is_limited_like_a_known_one(store, settings, client, address):
    """Counted per (client_id, address) too, so that the 429 does not tell which ids exist."""
    settings.RATE_LIMIT_TOKEN_FAILURES = "2/m"
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
def test_the_token_lock_lifts_after_retry_after(store, settings, client, guide_client, address):
    # 1/s: one failure weighs on this second and the next, so a slow machine cannot dodge it.
    settings.RATE_LIMIT_TOKEN_FAILURES = "1/s"
    assert token_from(client, guide_client, "wrong", address).status_code == 401
    retry_after = assert_locked(token_from(client, guide_client, None, address))
    assert retry_after in (1, 2)
    time.sleep(retry_after)
    assert token_from(client, guide_client, None, address).status_code == 200


@pytest.mark.django_db
def test_a_secret_verified_before_the_attack_still_gets_tokens(
    store, settings, client, guide_client, address
):
    """A secret this process verified costs no rate-limit round trip, even from a locked pair."""
    settings.RATE_LIMIT_TOKEN_FAILURES = "2/m"
    assert token_from(client, guide_client, None, address).status_code == 200
    for _ in range(3):
        token_from(client, guide_client, "wrong", address)
    assert_locked(token_from(client, guide_client, "wrong", address))
    assert token_from(client, guide_client, None, address).status_code == 200


@pytest.mark.django_db
def test_floods_for_a_client_id_from_other_addresses_never_refuse_its_right_secret(
    store, settings, client, guide_client
):
    """The lock-out attack: secretless and wrong-secret floods naming the victim's client_id,
    from addresses other than the victim's, before and after the verification cache is gone."""
    settings.RATE_LIMIT_TOKEN_FAILURES = "3/m"
    settings.RATE_LIMIT_TOKEN_FAILURES_PER_IP = "5/m"
    victim = random_address()
    assert token_from(client, guide_client, None, victim).status_code == 200
    for expired in (False, True):
        if expired:
            forget_verified_secrets()  # as after a restart, or once the cache has expired
        attackers = [
            f"{('198.51.100', '203.0.113')[expired]}.{secrets.randbelow(250) + 1}",
            f"2001:db8:{secrets.randbits(16):x}:{int(expired)}::9",
        ]
        for attacker in attackers:
            codes = []
            for _ in range(8):
                secretless = {
                    "grant_type": "client_credentials",
                    "client_id": guide_client.client_id,
                }
                codes.append(
                    post_form(client, "/oauth/token", secretless, REMOTE_ADDR=attacker).status_code
                )
                codes.append(token_from(client, guide_client, "wrong", attacker).status_code)
            # The attacker's own address is limited (it got far fewer than 16 answers of 401).
            assert codes[-2:] == [429, 429]
            assert 0 < codes.count(401) <= 5
            if expired:  # not even the right secret is checked from there now
                assert_locked(token_from(client, guide_client, None, attacker))
        assert token_from(client, guide_client, None, victim).status_code == 200


@pytest.mark.django_db
def test_without_an_address_a_client_id_is_never_counted(store, settings, client, guide_client):
    """client_ip knows no address (a Unix socket whose proxy is not trusted): counting the
    client_id alone would let anyone lock it out, so nothing is counted per client."""
    settings.RATE_LIMIT_TOKEN_FAILURES = "1/h"
    for _ in range(3):
        assert token_from(client, guide_client, "wrong", "").status_code == 401
    forget_verified_secrets()
    assert token_from(client, guide_client, None, "").status_code == 200


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
    assert token_from(client, guide_client, None, random_address()).status_code == 200


@pytest.mark.parametrize(
    "form",
    [
        {},  # no credentials at all
        {"client_id": "CLIENT"},  # a client_id and no secret
        {"client_id": "CLIENT", "client_secret": ""},  # an empty secret
        {"client_id": "CLIENT", "client_secret": "s" * 513},  # a secret longer than any
        {"client_id": "c" * 65, "client_secret": "x"},  # longer than any client_id
    ],
    ids=["nothing", "no-secret", "empty-secret", "long-secret", "malformed-id"],
)
@pytest.mark.django_db
def test_requests_without_usable_credentials_count_against_the_address_only(
    store, settings, client, guide_client, address, form
):
    settings.RATE_LIMIT_TOKEN_FAILURES = "1/h"
    settings.RATE_LIMIT_TOKEN_FAILURES_PER_IP = "3/h"
    data = {"grant_type": "client_credentials"}
    data.update({k: v.replace("CLIENT", guide_client.client_id) for k, v in form.items()})
    for _ in range(2):
        response = post_form(client, "/oauth/token", data, REMOTE_ADDR=address)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
    # Nothing was counted against the client_id from this address (its limit there is 1).
    assert token_from(client, guide_client, None, address).status_code == 200
    assert post_form(client, "/oauth/token", data, REMOTE_ADDR=address).status_code == 401
    # The address is full: the next request without credentials is refused before anything.
    assert_locked(post_form(client, "/oauth/token", data, REMOTE_ADDR=address))


@pytest.mark.django_db
def test_an_ipv6_client_owns_its_64_and_is_counted_by_it(store, settings, client, guide_client):
    settings.RATE_LIMIT_TOKEN_FAILURES_PER_IP = "3/h"
    net = f"2001:db8:{secrets.randbits(16):x}:{secrets.randbits(16):x}"
    for host in ("::1", "::2", ":abcd:1234:5678:9abc"):
        address = f"{net}{host}"
        assert token_from(client, guide_client, "wrong", address).status_code == 401
    # Another address of the same /64: the same bucket, full.
    assert_locked(token_from(client, guide_client, None, f"{net}:ffff:ffff:ffff:ffff"))
    # The neighbouring /64 is somebody else.
    neighbour = str(ipaddress.IPv6Address(f"{net}::1") + (1 << 64))
    assert token_from(client, guide_client, None, neighbour).status_code == 200


# --- Argon2 budget per address ------------------------------------------------------------------


@pytest.mark.django_db
def test_an_address_gets_no_more_argon2_checks_than_its_budget(
    store, settings, client, guide_client, other_client, address
):
    """Right secrets spend the budget too (they ran argon2); a cached secret spends nothing."""
    settings.RATE_LIMIT_ARGON2_PER_IP = "3/h"
    assert token_from(client, guide_client, None, address).status_code == 200  # argon2: 1
    assert token_from(client, guide_client, None, address).status_code == 200  # cached: 0
    assert token_from(client, guide_client, "wrong", address).status_code == 401  # 2
    assert token_from(client, other_client, None, address).status_code == 200  # 3
    assert_locked(token_from(client, other_client, "wrong", address))
    forget_verified_secrets()
    assert_locked(token_from(client, guide_client, None, address))
    # Another address has its own budget.
    assert token_from(client, guide_client, None, random_address()).status_code == 200


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
def test_a_successful_token_request_leaves_no_failure_counted(
    settings, client, guide_client, address
):
    settings.REDIS_URL = None
    with CaptureQueriesContext(connection) as first:
        assert token_from(client, guide_client, None, address).status_code == 200
    with CaptureQueriesContext(connection) as warm:
        assert token_from(client, guide_client, None, address).status_code == 200
    counts = dict(RateLimitCounter.objects.values_list("key", "count"))
    failures = ratelimit.token_failure_counters(guide_client.client_id, address)
    (spent,) = ratelimit.argon2_counters(address)
    now = time.time()
    # The slots reserved before argon2 were given back; the argon2 budget keeps its one.
    assert [counts.get(c.key(now), 0) for c in failures] == [0, 0]
    assert counts[spent.key(now)] == 1
    table = RateLimitCounter._meta.db_table
    assert any(table in q["sql"] for q in first.captured_queries)
    # A request whose secret this process verified does not touch the limiter at all.
    assert not [q for q in warm.captured_queries if table in q["sql"]]


@pytest.mark.django_db
def test_a_successful_token_request_leaves_no_failure_counted_in_redis(
    settings, client, guide_client, address
):
    if not _redis_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    settings.REDIS_URL = REDIS_URL
    server = redis.Redis.from_url(REDIS_URL)
    counters = ratelimit.token_failure_counters(guide_client.client_id, address)
    for _ in range(3):
        assert token_from(client, guide_client, None, address).status_code == 200
    now = time.time()
    assert [int(server.get(c.key(now)) or 0) for c in counters] == [0, 0]
    token_from(client, guide_client, "wrong", address)
    assert [int(server.get(c.key(time.time())) or 0) for c in counters] == [1, 1]


@pytest.mark.django_db
def test_a_store_that_is_down_fails_open(settings, client, guide_client, address, caplog):
    """A limiter outage must not take the token endpoint down: 401 and 200 as usual, logged."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.RATE_LIMIT_TOKEN_FAILURES = "1/m"
    for _ in range(3):
        assert token_from(client, guide_client, "wrong", address).status_code == 401
    assert token_from(client, guide_client, None, address).status_code == 200
    assert "rate-limit store unavailable" in caplog.text


# --- The store: atomic, two windows, Retry-After ------------------------------------------------


def counter(limit: int = 10, period: int = 60, kept: bool = False) -> ratelimit.Counter:
    return ratelimit.Counter("test", secrets.token_hex(8), Rate(limit, period), kept=kept)


def boundary() -> float:
    """A window boundary of a 60 s period, far from the present (fresh windows in Redis)."""
    return (int(time.time()) // 60 + 1 + secrets.randbelow(10**6)) * 60.0


def taken(counters: list[ratelimit.Counter], now: float) -> bool:
    try:
        ratelimit.acquire(counters, now=now)
    except ratelimit.RateLimited:
        return False
    return True


@pytest.mark.django_db
def test_a_burst_straddling_a_window_boundary_gets_the_limit_once(store):
    c, edge = counter(limit=10), boundary()
    assert [taken([c], edge - 0.5) for _ in range(10)] == [True] * 10
    assert not taken([c], edge - 0.4)
    # A fixed window would allow ten more here; the previous window still weighs 99 %.
    assert [taken([c], edge + 0.5) for _ in range(10)] == [False] * 10
    # Half way through the next window, half the previous one has faded: five more.
    assert [taken([c], edge + 30) for _ in range(6)] == [True] * 5 + [False]
    # A window later, only those five weigh, and less and less.
    assert [taken([c], edge + 60) for _ in range(6)] == [True] * 5 + [False]


@pytest.mark.django_db
def test_retry_after_is_exactly_when_the_next_attempt_is_allowed(store):
    for c, start in ((counter(limit=4), 20.0), (counter(limit=1), 45.5), (counter(limit=3), 0)):
        edge = boundary()
        now = edge + start
        for _ in range(c.rate.limit):
            assert taken([c], now)
        with pytest.raises(ratelimit.RateLimited) as refused:
            ratelimit.acquire([c], now=now)
        retry_after = refused.value.retry_after
        assert 1 <= retry_after <= 2 * c.rate.period
        if retry_after > 1:
            assert not taken([c], now + retry_after - 1)
        assert taken([c], now + retry_after)


@pytest.mark.django_db
def test_a_full_counter_takes_nothing_from_the_others(store):
    roomy, full, now = counter(limit=5), counter(limit=1), boundary()
    assert taken([full], now)
    assert not taken([roomy, full], now)
    assert [taken([roomy], now) for _ in range(6)] == [True] * 5 + [False]


@pytest.mark.django_db
def test_release_gives_back_the_slots_but_not_those_of_kept_counters(store):
    failures, work, now = counter(limit=2), counter(limit=2, kept=True), boundary()
    for _ in range(5):
        ratelimit.release(ratelimit.acquire([failures], now=now))
    assert taken([failures], now) and taken([failures], now)
    assert not taken([failures], now)
    ratelimit.release(ratelimit.acquire([work], now=now))
    ratelimit.release(ratelimit.acquire([work], now=now))
    assert not taken([work], now)


@pytest.mark.django_db
def test_release_never_counts_below_zero(store):
    c, now = counter(limit=1), boundary()
    reservation = ratelimit.acquire([c], now=now)
    ratelimit.release(reservation)
    ratelimit.release(reservation)  # twice: still zero, not minus one
    assert taken([c], now)
    assert not taken([c], now)


@pytest.mark.django_db
def test_check_reads_and_hit_counts(store):
    c, now = counter(limit=2), boundary()
    ratelimit.check([c], now=now)
    ratelimit.hit([c], now=now)
    ratelimit.check([c], now=now)
    ratelimit.hit([c], now=now)
    with pytest.raises(ratelimit.RateLimited):
        ratelimit.check([c], now=now)
    ratelimit.hit([c], now=now)  # counting goes past the limit: hit never refuses
    assert not taken([c], now + 60)  # three still weigh on the next window


def parallel_acquisitions(c: ratelimit.Counter, attempts: int) -> int:
    now = boundary()

    def attempt(_: int) -> bool:
        try:
            return taken([c], now)
        finally:
            connection.close()  # each thread has its own database connection

    with ThreadPoolExecutor(max_workers=32) as pool:
        return sum(pool.map(attempt, range(attempts)))


def test_parallel_attempts_never_get_more_than_the_limit_in_redis(settings):
    if not _redis_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    settings.REDIS_URL = REDIS_URL
    assert parallel_acquisitions(counter(limit=10), 200) == 10


@pytest.mark.django_db(transaction=True)
def test_parallel_attempts_never_get_more_than_the_limit_in_the_database(settings):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes writers itself; the e2e test covers it across processes")
    settings.REDIS_URL = None
    assert parallel_acquisitions(counter(limit=10), 200) == 10


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
    assert login(Client(), victim.upper(), PASSWORD, random_address()).status_code == 429
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
    assert login(Client(), someone, PASSWORD, random_address()).status_code == 302


@pytest.mark.django_db
def test_the_login_lock_lifts_after_retry_after(store, settings, address):
    settings.RATE_LIMIT_LOGIN_FAILURES = "1/s"
    victim = f"victim-{secrets.token_hex(4)}@acme.test"
    make_user(victim)
    assert login(Client(), victim, "guess", address).status_code == 200
    response = login(Client(), victim, PASSWORD, address)
    assert response.status_code == 429
    retry_after = int(response["Retry-After"])
    assert retry_after in (1, 2)
    time.sleep(retry_after)
    assert login(Client(), victim, PASSWORD, address).status_code == 302


@pytest.mark.django_db
def test_a_successful_login_gives_its_slot_back(store, settings, address):
    settings.RATE_LIMIT_LOGIN_FAILURES = "2/h"
    someone = f"someone-{secrets.token_hex(4)}@acme.test"
    make_user(someone)
    for _ in range(3):
        assert login(Client(), someone, PASSWORD, address).status_code == 302
    assert login(Client(), someone, "guess", address).status_code == 200
    assert login(Client(), someone, PASSWORD, address).status_code == 302
    assert login(Client(), someone, "guess", address).status_code == 200
    assert login(Client(), someone, PASSWORD, address).status_code == 429


@pytest.mark.django_db(transaction=True)
def test_parallel_login_guesses_get_no_more_than_the_limit(store, settings, address):
    """Each guess reserves its slot before the password is checked, in one atomic step."""
    if connection.vendor != "postgresql":
        pytest.skip("threads cannot share SQLite's test database (run with DATABASE_URL)")
    settings.RATE_LIMIT_LOGIN_FAILURES = "3/h"
    someone = f"someone-{secrets.token_hex(4)}@acme.test"
    make_user(someone)

    def guess(_: int) -> int:
        try:
            return login(Client(), someone, "guess", address).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(guess, range(40)))
    assert codes.count(200) == 3
    assert codes.count(429) == 37


# --- Management API -----------------------------------------------------------------------------


def api_get(client: Client, token: str):
    return client.get("/api/v1/organizations", HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.mark.django_db
def test_the_api_limit_trips(store, settings, client, management):
    settings.RATE_LIMIT_API = "3/m"
    token = request_token(client, management).json()["access_token"]
    for _ in range(3):
        assert api_get(client, token).status_code == 200
    response = api_get(client, token)
    assert response.status_code == 429
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 120
    assert response.json() == {
        "code": 8,
        "message": f"too many requests; retry after {retry_after} s",
        "details": [{"error_code": "RESOURCE_EXHAUSTED"}],
    }


@pytest.mark.django_db
def test_the_api_limit_lifts_after_retry_after(store, settings, client, management):
    settings.RATE_LIMIT_API = "1/s"
    token = request_token(client, management).json()["access_token"]
    assert api_get(client, token).status_code == 200
    response = api_get(client, token)
    assert response.status_code == 429
    time.sleep(int(response["Retry-After"]))
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
