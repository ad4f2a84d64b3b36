"""The console's token quotas (organization and client pages) and its top clients (issue 20)."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from clients.models import AuditEvent, Organization
from oauth import stats
from tests.conftest import request_token
from tests.console.test_actions import inline, secrets_inline

pytestmark = pytest.mark.django_db


def test_staff_set_an_organizations_caps_and_a_clients_quota(admin_client, org, guide_client):
    change = reverse("admin:clients_organization_change", args=[quote(org.id)])
    page = admin_client.get(change).content.decode()
    assert 'name="token_quota_per_hour"' in page
    response = admin_client.post(
        change,
        {
            "display_name": org.display_name,
            "external_id": org.external_id,
            "token_quota_per_hour": "100",
            "token_quota_per_day": "",
            "token_quota_mode": "observe",
            "on_leak": "revoke",
            **inline("memberships", []),
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    org = Organization.objects.get(pk=org.pk)
    assert org.token_quota == {"per_hour": 100, "per_day": None, "mode": "observe"}
    event = AuditEvent.objects.filter(action="organization.update").latest("id")
    assert event.details["changes"]["token_quota"][1]["per_hour"] == 100

    client = guide_client.client
    change = reverse("admin:clients_apiclient_change", args=[quote(client.id)])
    form = {
        "name": client.name,
        "description": client.description,
        "expiry": "3600",
        "scopes_text": " ".join(client.scopes),
        "audience_text": "\n".join(client.audience),
        "claims_text": "",
        "token_quota_per_hour": "500",
        "token_quota_mode": "enforce",
        **secrets_inline(client),
    }
    above = admin_client.post(change, form)
    assert above.status_code == 200 and "cap of 100" in above.content.decode()
    saved = admin_client.post(change, {**form, "token_quota_per_hour": "60"})
    assert saved.status_code == 302
    client.refresh_from_db()
    assert client.token_quota == {"per_hour": 60, "per_day": None, "mode": "enforce"}


def test_the_dashboard_lists_the_top_clients_of_the_last_24_hours(
    admin_client, client, guide_client
):
    for _ in range(4):
        request_token(client, guide_client)
    stats.flush()
    text = admin_client.get(reverse("admin:index")).content.decode()
    assert "Top clients by tokens, last 24 hours" in text
    assert f">{guide_client.client.name}</a></th><td>4 issued</td>" in text
