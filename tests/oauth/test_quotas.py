"""Token quotas and per-client usage counts (issue 20): counted in memory, flushed once a minute,
enforced per hour and day with Redis or from the database, announced in RateLimit headers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

from clients.models import AuditEvent, QuotaAlert
from clients.services import client_update, organization_update
from oauth import quotas, stats, usage
from oauth.models import TokenUsage
from tests.conftest import SYSTEM, Credentials, member, post_form, request_token, run_worker

pytestmark = pytest.mark.django_db

REDIS_URL = "redis://127.0.0.1:6379/12"
# 10:20 UTC on a fixed day: 40 minutes left in the hour.
T0 = datetime(2026, 6, 1, 10, 20, tzinfo=UTC).timestamp()


@pytest.fixture
def clock():
    class Clock:
        now = T0

        def __call__(self) -> float:
            return self.now

        def move(self, seconds: float) -> None:
            self.now += seconds

    moving = Clock()
    stats.set_clock(moving)
    return moving


@pytest.fixture(params=["redis", "database"])
def store(request, settings):
    if request.param == "redis":
        try:
            # No FLUSHDB: the other test process shares this database, and every key of a test
            # names its own random client or organization id.
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
        except redis.RedisError:
            pytest.skip(f"no Redis at {REDIS_URL}")
        settings.REDIS_URL = REDIS_URL
    else:
        settings.REDIS_URL = None
    return request.param


def set_quota(creds: Credentials, **quota) -> None:
    client_update(actor=SYSTEM, client=creds.client, token_quota=quota)


def test_counts_per_client_hour_and_reason_reach_the_table_on_flush(client, guide_client, clock):
    for _ in range(3):
        assert request_token(client, guide_client).status_code == 200
    assert request_token(client, guide_client, scope="nope").status_code == 400
    assert request_token(client, Credentials(guide_client.client, "wrong")).status_code == 401
    made_up = Credentials(guide_client.client, "x")
    made_up.client = type(guide_client.client)(id="m2morg_0")
    assert request_token(client, made_up).status_code == 401
    assert not TokenUsage.objects.exists()  # nothing written within the minute
    stats.flush()
    rows = {
        (row.reason, row.count, row.organization_id)
        for row in TokenUsage.objects.filter(client_id=guide_client.client_id)
    }
    org = guide_client.client.organization_id
    assert rows == {("", 3, org), ("invalid_scope", 1, org), ("invalid_client", 1, org)}
    assert not TokenUsage.objects.filter(client_id="m2morg_0").exists()  # not a client of ours
    assert TokenUsage.objects.get(reason="").hour == datetime(2026, 6, 1, 10, tzinfo=UTC)


def test_a_later_hour_is_a_new_row_and_flushes_add_up(client, guide_client, clock):
    request_token(client, guide_client)
    stats.flush()
    request_token(client, guide_client)
    clock.move(3600)
    request_token(client, guide_client)
    stats.flush()
    counts = dict(TokenUsage.objects.filter(reason="").values_list("hour", "count"))
    assert counts == {
        datetime(2026, 6, 1, 10, tzinfo=UTC): 2,
        datetime(2026, 6, 1, 11, tzinfo=UTC): 1,
    }


def test_a_failed_flush_keeps_the_usage_counts(client, guide_client, clock, monkeypatch):
    request_token(client, guide_client)

    def down(usage):
        raise stats.DatabaseError("down")

    monkeypatch.setattr(stats, "_add_usage", down)
    stats.flush()
    monkeypatch.undo()
    stats.flush()
    assert TokenUsage.objects.get(reason="").count == 1


def test_old_hours_are_purged(client, guide_client, clock, settings):
    request_token(client, guide_client)
    stats.flush()
    clock.move(91 * 86400)
    request_token(client, guide_client)
    stats.flush()
    out = __import__("io").StringIO()
    call_command("purge_expired", stdout=out)
    assert "1 token usage rows" in out.getvalue()
    assert TokenUsage.objects.get().hour.date().isoformat() == "2026-08-31"


def test_an_enforced_hourly_quota_refuses_with_429_and_resets_next_hour(
    client, guide_client, clock, store
):
    set_quota(guide_client, per_hour=3)
    for remaining in (2, 1, 0):
        response = request_token(client, guide_client)
        assert response.status_code == 200
        assert response["RateLimit-Policy"] == '"hour";q=3;w=3600'
        assert response["RateLimit"] == f'"hour";r={remaining};t=2400'
    refused = request_token(client, guide_client)
    assert refused.status_code == 429
    body = refused.json()
    assert body["error"] == "temporarily_unavailable"
    assert body["error_description"].startswith("token quota exceeded: ")
    assert refused["Retry-After"] == "2400"
    assert refused["RateLimit"] == '"hour";r=0;t=2400'
    assert refused["Cache-Control"] == "no-store"
    clock.move(2400)  # 11:00: a new window
    response = request_token(client, guide_client)
    assert response.status_code == 200
    assert response["RateLimit"] == '"hour";r=2;t=3600'
    stats.flush()
    refusals = TokenUsage.objects.get(reason="quota_exceeded")
    assert refusals.count == 1


def test_a_refusal_of_a_client_under_a_quota_says_where_it_is(client, guide_client, clock, store):
    set_quota(guide_client, per_hour=5)
    assert request_token(client, guide_client).status_code == 200
    refused = request_token(client, guide_client, scope="nope")
    assert refused.status_code == 400
    assert refused["RateLimit-Policy"] == '"hour";q=5;w=3600'
    assert refused["RateLimit"] == '"hour";r=4;t=2400'  # not counted
    assert request_token(client, guide_client)["RateLimit"] == '"hour";r=3;t=2400'


def test_a_daily_quota_and_the_organization_cap_are_both_announced(
    client, guide_client, clock, store
):
    organization_update(
        actor=SYSTEM, organization=guide_client.client.organization, token_quota={"per_day": 2}
    )
    set_quota(guide_client, per_hour=10, per_day=2)
    guide_client.client.refresh_from_db()
    response = request_token(client, guide_client)
    assert response["RateLimit-Policy"] == (
        '"hour";q=10;w=3600, "day";q=2;w=86400, "organization-day";q=2;w=86400'
    )
    assert response["RateLimit"] == (
        '"hour";r=9;t=2400, "day";r=1;t=49200, "organization-day";r=1;t=49200'
    )
    assert request_token(client, guide_client).status_code == 200
    refused = request_token(client, guide_client)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "49200"  # the end of the UTC day


def test_the_organization_cap_counts_all_its_clients(client, guide_client, org, clock, store):
    organization_update(actor=SYSTEM, organization=org, token_quota={"per_hour": 2})
    from clients.services import client_create

    second, secret = client_create(actor=SYSTEM, organization=org, name="second")
    other = Credentials(second, secret)
    assert request_token(client, guide_client).status_code == 200
    assert request_token(client, other).status_code == 200
    refused = request_token(client, other)
    assert refused.status_code == 429
    assert "organization's quota of 2 tokens per hour" in refused.json()["error_description"]
    sample = REGISTRY.get_sample_value("oauth_quota_refusals_total", {"organization": org.id})
    assert sample is not None and sample >= 1


def test_observe_never_refuses_and_warns(client, guide_client, org, clock, store):
    owner = member("owner@acme.test", org, "owner")
    member("viewer@acme.test", org, "viewer")
    set_quota(guide_client, per_hour=2, mode="observe")
    for _ in range(5):
        response = request_token(client, guide_client)
        assert response.status_code == 200
    assert response["RateLimit"] == '"hour";r=0;t=2400'
    run_worker()
    assert [m.to for m in mail.outbox] == [[owner.email], [owner.email]]
    assert "observe mode" in mail.outbox[1].body


def test_the_80_and_100_percent_mails_go_out_once_per_window(
    client, guide_client, org, clock, store
):
    owner = member("owner@acme.test", org, "owner")
    admin = member("admin@acme.test", org, "admin")
    set_quota(guide_client, per_hour=5)
    for _ in range(9):
        request_token(client, guide_client)
    quotas.reset()  # another process: it has not sent them, the table says they went out
    for _ in range(3):
        request_token(client, guide_client)
    assert sorted(QuotaAlert.objects.values_list("threshold", flat=True)) == [80, 100]
    actions = list(
        AuditEvent.objects.filter(action__startswith="quota.").values_list("action", "details")
    )
    assert sorted(a for a, _ in actions) == ["quota.exceed", "quota.warn"]
    details = dict(actions)["quota.exceed"]
    assert (details["window"], details["limit"], details["mode"]) == ("hour", 5, "enforce")
    assert "2 done" in run_worker()
    assert len(mail.outbox) == 2
    assert sorted(mail.outbox[0].to) == sorted([owner.email, admin.email])
    subjects = sorted(m.subject for m in mail.outbox)
    assert subjects[0].startswith(f"Token quota 80% used: {guide_client.client.name} in Acme")
    assert subjects[1].startswith("Token quota reached")
    assert mail.outbox[0].alternatives  # an HTML part too
    clock.move(3600)
    for _ in range(4):
        request_token(client, guide_client)
    assert QuotaAlert.objects.filter(threshold=80).count() == 2  # the next hour: once more


def test_a_client_with_a_redis_quota_still_makes_one_query(client, guide_client, clock, settings):
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        pytest.skip("no Redis")
    settings.REDIS_URL = REDIS_URL
    set_quota(guide_client, per_hour=1000, per_day=10000)
    assert request_token(client, guide_client).status_code == 200  # warm
    for _ in range(3):
        with CaptureQueriesContext(connection) as queries:
            assert request_token(client, guide_client).status_code == 200
        assert len(queries.captured_queries) == 1, queries.captured_queries


def test_a_client_without_a_quota_has_no_ratelimit_headers(client, guide_client):
    response = request_token(client, guide_client)
    assert response.status_code == 200
    assert "RateLimit" not in response and "RateLimit-Policy" not in response


def test_an_unreachable_quota_store_fails_open(client, guide_client, clock, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    set_quota(guide_client, per_hour=1)
    for _ in range(2):
        assert request_token(client, guide_client).status_code == 200


@pytest.mark.parametrize(
    ("issued", "expected"),
    [(120, "a new token every 30 seconds"), (2, None), (10, None)],
)
def test_the_advisor_speaks_up_for_a_client_that_does_not_cache(
    client, guide_client, clock, issued, expected
):
    for _ in range(issued):
        request_token(client, guide_client)
    stats.flush()
    advice = usage.advice(
        client_id=guide_client.client_id,
        organization_id=guide_client.client.organization_id,
        token_lifetime=3600,
    )
    if expected is None:
        assert advice is None
    else:
        assert expected in advice and "each lasts an hour" in advice


def test_the_series_fills_empty_hours_and_sums_days(client, guide_client, clock):
    request_token(client, guide_client)
    request_token(client, guide_client, scope="nope")
    clock.move(2 * 3600)
    request_token(client, guide_client)
    stats.flush()
    org = guide_client.client.organization_id
    start = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
    hours = usage.series(
        organization_id=org,
        client_id=None,
        start=start,
        end=start + timedelta(hours=4),
        granularity="hour",
    )
    assert [(h["start_time"].hour, h["tokens_issued"]) for h in hours] == [
        (9, 0),
        (10, 1),
        (11, 0),
        (12, 1),
        (13, 0),  # 13:00 to 14:00 starts before the end (13:30)
    ]
    assert hours[1]["requests_refused"] == {"invalid_scope": 1}
    (day,) = usage.series(
        organization_id=org,
        client_id=guide_client.client_id,
        start=start,
        end=start + timedelta(hours=4),
        granularity="day",
    )
    assert (day["tokens_issued"], day["requests_refused"]) == (2, {"invalid_scope": 1})
    assert re.match(r"2026-06-01", day["start_time"].isoformat())


def test_a_new_organization_gets_the_default_caps(settings, db):
    from clients.services import organization_create

    settings.OAUTH = {
        **settings.OAUTH,
        "TOKEN_QUOTA_DEFAULT_PER_HOUR": 500,
        "TOKEN_QUOTA_DEFAULT_MODE": "observe",
    }
    organization = organization_create(actor=SYSTEM, display_name="Defaults Inc")
    assert organization.token_quota == {"per_hour": 500, "per_day": None, "mode": "observe"}


def test_a_private_key_jwt_client_is_under_its_quota_too(client, guide_client, rs256, clock):
    from tests.assertion_helpers import assertion_form

    set_quota(guide_client, per_hour=1)
    guide_client.client.refresh_from_db()
    answers = [
        post_form(client, "/oauth/token", assertion_form(rs256.assertion(guide_client.client_id)))
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [200, 429]
    assert answers[0]["RateLimit"] == '"hour";r=0;t=2400'
