"""GET /api/v1/organizations/{id}/audit-events: the activity log, paged and filtered."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from clients.models import AuditEvent
from clients.services import Actor, client_update, secret_add, secret_delete
from tests.api.test_views import assert_error
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db

OWNER = Actor(type="user", id="7", display="owner@example.com")


def path(org) -> str:
    return f"/organizations/{org.id}/audit-events"


def test_it_lists_the_organizations_events_as_sentences_newest_first(api, org, guide_client):
    secret = guide_client.client.secrets.get()
    secret_delete(actor=OWNER, secret=secret)
    body = api.call("get", path(org)).json()
    first = body["audit_events"][0]
    assert first["action"] == "secret.delete" and first["actor_display"] == "owner@example.com"
    assert first["summary"] == (
        f"owner@example.com revoked secret …{secret.secret_suffix} "
        "of GitHub Actions Deployment Service"
    )
    assert first["details"]["client_name"] == "GitHub Actions Deployment Service"
    assert body["total_size"] == AuditEvent.objects.filter(organization_id=org.id).count()


def test_it_filters_by_client_person_kind_and_time(api, org, guide_client, other_client):
    client = guide_client.client
    secret_add(actor=OWNER, client=client)
    client_update(actor=SYSTEM, client=client, expiry=600)
    by_client = api.call("get", f"{path(org)}?client_id={client.id}").json()["audit_events"]
    assert by_client and all(e["client_id"] == client.id for e in by_client)
    mine = api.call("get", f"{path(org)}?actor_id=7").json()["audit_events"]
    assert [e["action"] for e in mine] == ["secret.create"]
    kinds = api.call("get", f"{path(org)}?kind=client").json()["audit_events"]
    assert [e["action"] for e in kinds] == ["client.update", "client.create"]
    assert "token lifetime: 3600 → 600" in kinds[0]["summary"]
    later = (timezone.now() + dt.timedelta(minutes=1)).isoformat()
    assert api.call("get", f"{path(org)}?since={later.replace('+', '%2B')}").json() == {
        "audit_events": [],
        "next_page_token": "",
        "prev_page_token": "",
        "total_size": 0,
    }
    # Another organization's events never show.
    assert other_client.client_id not in str(api.call("get", path(org)).json())


def test_it_pages(api, org, guide_client):
    for _ in range(3):
        secret_add(actor=SYSTEM, client=guide_client.client)
    first = api.call("get", f"{path(org)}?page_size=2").json()
    second = api.call(
        "get", f"{path(org)}?page_size=2&page_token={first['next_page_token']}"
    ).json()
    ids = [e["id"] for e in first["audit_events"] + second["audit_events"]]
    assert len(ids) == 4 and len(set(ids)) == 4


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("kind=nonsense", "kind"),
        ("since=yesterday", "since"),
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until"),
        ("page_size=0", "page_size"),
        ("page_token=forged", "page_token"),
    ],
)
def test_bad_filters_are_400_with_their_field(api, org, query, field):
    body = assert_error(api.call("get", f"{path(org)}?{query}"), 400, 3)
    assert body["details"][0]["field_violations"][0]["field"] == field


def test_an_unknown_organization_is_404(api, db):
    assert_error(api.call("get", "/organizations/org_00000000000000000/audit-events"), 404, 5)
