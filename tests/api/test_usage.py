"""The management API's usage reports and token quotas (issue 20)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from oauth import stats
from tests.api.test_views import assert_error, violations
from tests.conftest import request_token

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 6, 1, 10, 20, tzinfo=UTC).timestamp()


@pytest.fixture
def at_t0():
    stats.set_clock(lambda: T0)


def org_path(creds) -> str:
    return f"/organizations/{creds.client.organization_id}"


def client_path(creds) -> str:
    return f"{org_path(creds)}/clients/{creds.client_id}"


def test_the_usage_of_a_client_and_its_organization(api, client, guide_client, at_t0):
    for _ in range(2):
        request_token(client, guide_client)
    request_token(client, guide_client, audience="https://elsewhere.test")
    stats.flush()
    query = "?start=2026-06-01T09:00:00Z&end=2026-06-01T11:00:00Z&granularity=hour"
    for path in (client_path(guide_client), org_path(guide_client)):
        response = api.call("get", f"{path}/usage{query}")
        assert response.status_code == 200, response.content
        assert response.json() == {
            "usage": [
                {
                    "start_time": "2026-06-01T09:00:00.000000Z",
                    "tokens_issued": 0,
                    "requests_refused": {},
                },
                {
                    "start_time": "2026-06-01T10:00:00.000000Z",
                    "tokens_issued": 2,
                    "requests_refused": {"invalid_target": 1},
                },
            ]
        }
    days = api.call("get", f"{client_path(guide_client)}/usage?granularity=day").json()["usage"]
    assert len(days) == 31 and days[-1]["tokens_issued"] == 2  # 30 days to now, by UTC day


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("start=yesterday", "start"),
        ("end=2026-13-01T00:00:00Z", "end"),
        ("start=2026-06-01T10:00:00Z&end=2026-06-01T09:00:00Z", "end"),
        ("start=2025-01-01T00:00:00Z&end=2026-06-01T00:00:00Z", "start"),
        ("granularity=minute", "granularity"),
    ],
)
def test_a_bad_usage_query_is_400_with_the_field(api, guide_client, query, field):
    body = assert_error(api.call("get", f"{client_path(guide_client)}/usage?{query}"), 400, 3)
    assert field in violations(body)


def test_another_organizations_client_usage_is_404(api, guide_client, other_client):
    path = f"{org_path(guide_client)}/clients/{other_client.client_id}/usage"
    assert_error(api.call("get", path), 404, 5)
    assert_error(api.call("get", "/organizations/org_0/usage"), 404, 5)


def test_quotas_are_set_shown_and_validated(api, guide_client):
    org = api.call("patch", org_path(guide_client), {"token_quota": {"per_hour": 100}})
    assert org.json()["organization"]["token_quota"] == {
        "per_hour": 100,
        "per_day": None,
        "mode": "enforce",
    }
    quota = {"per_hour": 50, "per_day": 500, "mode": "observe"}
    response = api.call("patch", client_path(guide_client), {"token_quota": quota})
    assert response.status_code == 200, response.content
    assert response.json()["client"]["token_quota"] == quota
    above = api.call("patch", client_path(guide_client), {"token_quota": {"per_hour": 101}})
    body = assert_error(above, 400, 3)
    assert "cap of 100" in violations(body)["token_quota"]
    assert api.call("get", client_path(guide_client)).json()["client"]["token_quota"] == quota
    bad_quotas = (
        {"per_hour": 0},
        {"per_day": 3_000_000_000},
        {"per_hour": "10"},
        {"mode": "warn"},
        {"per_minute": 1},
        5,
    )
    for bad in bad_quotas:
        response = api.call("patch", client_path(guide_client), {"token_quota": bad})
        assert_error(response, 400, 3)
    cleared = api.call("patch", client_path(guide_client), {"token_quota": None})
    assert cleared.json()["client"]["token_quota"] is None
