"""The portal's usage page and a client's usage panel and quota form (issue 20)."""

from __future__ import annotations

import pytest

from clients.services import organization_update
from oauth import stats
from tests.conftest import SYSTEM, request_token

pytestmark = pytest.mark.django_db


def usage_url(org) -> str:
    return f"/orgs/{org.id}/usage"


def client_url(creds) -> str:
    return f"/orgs/{creds.client.organization_id}/clients/{creds.client_id}"


def take(client, creds, times: int) -> None:
    for _ in range(times):
        assert request_token(client, creds).status_code == 200


def test_the_usage_page_shows_a_chart_a_table_and_the_top_clients(
    as_owner, client, org, guide_client
):
    take(client, guide_client, 3)
    request_token(client, guide_client, scope="nope")
    stats.flush()
    for range_key in ("24h", "7d", "30d", "bogus"):
        page = as_owner.get(f"{usage_url(org)}?range={range_key}")
        assert page.status_code == 200
        html = page.content.decode()
        assert '<svg viewBox="0 0 720 250" role="img"' in html
        assert '<title id="org-chart-title">' in html
        assert "3 tokens issued and 1 requests refused" in html
        assert "<table>" in html and "invalid_scope" in html
        assert guide_client.client.name in html  # top clients
    assert 'aria-current="page">Usage</a>' in html


def test_the_advisor_names_a_client_that_does_not_cache(as_owner, client, org, guide_client):
    take(client, guide_client, 40)
    stats.flush()
    page = as_owner.get(client_url(guide_client)).content.decode()
    assert "requests a new token every 90 seconds" in page
    assert "although each lasts an hour: cache the token" in page
    assert "#call-an-api-clientcredentials" in page
    assert "requests a new token every" in as_owner.get(usage_url(org)).content.decode()


def test_the_advisor_is_silent_for_a_client_that_caches(as_owner, client, org, guide_client):
    take(client, guide_client, 2)
    stats.flush()
    assert "requests a new token" not in as_owner.get(client_url(guide_client)).content.decode()
    assert "requests a new token" not in as_owner.get(usage_url(org)).content.decode()


def test_an_admin_sets_a_clients_quota_within_the_cap(as_admin, org, guide_client):
    organization_update(actor=SYSTEM, organization=org, token_quota={"per_hour": 100})
    url = f"{client_url(guide_client)}/quota"
    response = as_admin.post(url, {"per_hour": "50", "per_day": "", "mode": "observe"})
    assert response.status_code == 302
    guide_client.client.refresh_from_db()
    assert guide_client.client.token_quota == {"per_hour": 50, "per_day": None, "mode": "observe"}
    page = as_admin.get(client_url(guide_client)).content.decode()
    assert "Saved the token quota" in page and 'role="meter"' in page
    above = as_admin.post(url, {"per_hour": "500", "mode": "enforce"}, follow=True)
    assert "cap of 100" in above.content.decode()
    bad = as_admin.post(url, {"per_hour": "0", "mode": "enforce"}, follow=True)
    assert "Quota not saved" in bad.content.decode()
    guide_client.client.refresh_from_db()
    assert guide_client.client.token_quota_per_hour == 50
    as_admin.post(url, {"per_hour": "", "per_day": "", "mode": "enforce"})
    guide_client.client.refresh_from_db()
    assert guide_client.client.token_quota is None


def test_a_viewer_sees_usage_but_cannot_change_quotas(as_viewer, org, guide_client):
    assert as_viewer.get(usage_url(org)).status_code == 200
    page = as_viewer.get(client_url(guide_client)).content.decode()
    assert 'id="usage-title"' in page and "Save quota" not in page
    response = as_viewer.post(f"{client_url(guide_client)}/quota", {"per_hour": "5"})
    assert response.status_code == 403
    guide_client.client.refresh_from_db()
    assert guide_client.client.token_quota is None


def test_another_organizations_usage_is_404(as_outsider, org, guide_client):
    assert as_outsider.get(usage_url(org)).status_code == 404
    assert as_outsider.get(client_url(guide_client)).status_code == 404
