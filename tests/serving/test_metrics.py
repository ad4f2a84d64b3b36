"""GET /metrics: protected by a bearer token; counters move with the token endpoint."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from clients.models import OutboxTask
from clients.services import Actor, webhook_endpoint_create, webhook_endpoint_test
from oauth import keys
from oauth.models import SigningKey
from tests.clients.test_webhooks import deliver
from tests.conftest import post_form, request_token
from tests.webhook_receiver import Receiver

TOKEN = "metrics-token-0123456789abcdef"
pytestmark = pytest.mark.django_db


@pytest.fixture
def metrics_enabled():
    with override_settings(METRICS_BEARER_TOKEN=TOKEN):
        yield


def scrape(client) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@override_settings(METRICS_BEARER_TOKEN=None)
def test_it_is_not_found_unless_a_token_is_configured(client):
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token-0123456789abcdef",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN}x",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer",
    ],
)
def test_it_refuses_a_missing_or_wrong_token(client, metrics_enabled, authorization):
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    response = client.get("/metrics", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert response.json()["error"] == "invalid_token"
    assert b"oauth_tokens_issued" not in response.content


def test_it_answers_the_right_token_in_prometheus_text_format(client, metrics_enabled):
    keys.ensure_signing_key()
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response["Cache-Control"] == "no-store"
    text = response.content.decode()
    for name in (
        "oauth_tokens_issued_total",
        "oauth_token_failures_total",
        "oauth_token_request_seconds",
        "api_requests_total",
        "signing_key_age_seconds",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name


def test_it_refuses_post(client, metrics_enabled):
    response = client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405


def test_issued_tokens_are_counted_by_auth_method(client, metrics_enabled, guide_client):
    before = scrape(client)
    assert request_token(client, guide_client).status_code == 200
    assert request_token(client, guide_client).status_code == 200
    response = post_form(
        client,
        "/oauth/token",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=guide_client.basic(),
    )
    assert response.status_code == 200
    after = scrape(client)
    name = "oauth_tokens_issued_total"
    post, basic = {"auth_method": "client_secret_post"}, {"auth_method": "client_secret_basic"}
    assert value(after, name, **post) - value(before, name, **post) == 2
    assert value(after, name, **basic) - value(before, name, **basic) == 1
    count = "oauth_token_request_seconds_count"
    assert value(after, count) - value(before, count) == 3


def test_failures_are_counted_by_oauth_error_code(client, metrics_enabled, guide_client):
    before = scrape(client)
    wrong = guide_client.__class__(guide_client.client, guide_client.secret[:-1] + "x")
    assert request_token(client, wrong).status_code == 401
    assert request_token(client, guide_client, grant_type="password").status_code == 400
    assert request_token(client, guide_client, scope="admin").status_code == 400
    assert client.get("/oauth/token").status_code == 405
    after = scrape(client)
    name = "oauth_token_failures_total"
    for reason in ("invalid_client", "unsupported_grant_type", "invalid_scope", "invalid_request"):
        assert value(after, name, reason=reason) - value(before, name, reason=reason) == 1, reason
    issued = "oauth_tokens_issued_total"
    assert value(after, issued, auth_method="client_secret_post") == value(
        before, issued, auth_method="client_secret_post"
    )
    count = "oauth_token_request_seconds_count"
    assert value(after, count) - value(before, count) == 4


def test_counting_costs_no_database_write(client, guide_client):
    # The first request may record last_used_time (once a minute); the second writes nothing.
    assert request_token(client, guide_client).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert request_token(client, guide_client).status_code == 200
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []


def test_management_api_requests_are_counted_by_status(client, metrics_enabled):
    before = scrape(client)
    statuses = Counter(
        client.get(path).status_code
        for path in ("/api/v1/organizations", "/api/v1/no-such-thing", "/api/v1/organizations")
    )
    client.get("/healthz")
    client.get("/api/v1x")
    client.get("/oauth/token")
    after = scrape(client)
    name = "api_requests_total"
    for status, count in statuses.items():
        delta = value(after, name, status=str(status)) - value(before, name, status=str(status))
        assert delta == count, status
    total = sum(v for (n, _), v in after.items() if n == name)
    assert total - sum(v for (n, _), v in before.items() if n == name) == 3


def test_signing_key_age_is_read_from_the_database_at_scrape_time(client, metrics_enabled):
    key = keys.ensure_signing_key()
    SigningKey.objects.filter(kid=key.kid).update(create_time=timezone.now() - timedelta(days=10))
    age = value(scrape(client), "signing_key_age_seconds")
    assert 10 * 86400 <= age < 10 * 86400 + 60
    keys.rotate_signing_key()
    assert value(scrape(client), "signing_key_age_seconds") < 60


def test_signing_key_age_is_absent_without_a_key(client, metrics_enabled):
    samples = scrape(client)
    assert not any(name == "signing_key_age_seconds" for name, _ in samples)


def test_the_outbox_age_is_read_from_the_database_at_scrape_time(client, metrics_enabled):
    assert value(scrape(client), "outbox_oldest_pending_age_seconds") == 0
    task = OutboxTask.objects.create(kind="email", payload={})
    OutboxTask.objects.filter(pk=task.pk).update(create_time=timezone.now() - timedelta(minutes=10))
    age = value(scrape(client), "outbox_oldest_pending_age_seconds")
    assert 600 <= age < 660
    OutboxTask.objects.filter(pk=task.pk).update(status="done")
    assert value(scrape(client), "outbox_oldest_pending_age_seconds") == 0


def test_webhook_deliveries_are_counted_by_outcome(client, metrics_enabled, org, settings):
    settings.OUTBOUND_ALLOW_INSECURE = True
    before = scrape(client)
    receiver = Receiver(statuses=[500]).start()
    try:
        endpoint, receiver.secret = webhook_endpoint_create(
            actor=Actor.system("tests"), organization=org, url=receiver.url
        )
        webhook_endpoint_test(actor=Actor.system("tests"), endpoint=endpoint)
        deliver()
    finally:
        receiver.stop()
    after = scrape(client)
    for outcome, added in (("success", 1), ("failure", 1)):
        # Two deliveries (the endpoint's own webhook_endpoint.created, the test event): the
        # first answered 500, the other 200.
        was = before.get(("webhook_deliveries_total", (("outcome", outcome),)), 0)
        assert value(after, "webhook_deliveries_total", outcome=outcome) == was + added
