"""POST /api/v1/secrets:report-leak: leaked secrets reported by any scanner or the provider's
own tools, answered in the request's order; organization settings on_leak and the lifetime."""

from __future__ import annotations

import pytest
from django.core import mail

from clients.models import AuditEvent, ClientSecret, make_plain_secret
from tests.api.test_views import assert_error, violations
from tests.conftest import request_token, run_worker

pytestmark = pytest.mark.django_db
PATH = "/secrets:report-leak"


def test_it_revokes_ours_and_answers_in_order(api, client, guide_client, other_client, owner):
    never = make_plain_secret()
    body = {
        "secrets": [never, guide_client.secret, "m2ms_bad", other_client.secret],
        "url": "https://paste.example/abc",
        "source": "pastebin",
    }
    response = api.call("post", PATH, body)
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    ours = ClientSecret.objects.get(client=guide_client.client)
    theirs = ClientSecret.objects.get(client=other_client.client)
    assert response.json() == {
        "results": [
            {"label": "false_positive", "secret_id": None},
            {"label": "true_positive", "secret_id": ours.id},
            {"label": "false_positive", "secret_id": None},
            {"label": "true_positive", "secret_id": theirs.id},
        ]
    }
    assert request_token(client, guide_client).status_code == 401
    assert request_token(client, other_client).status_code == 401
    event = AuditEvent.objects.get(action="secret.leak", target_id=ours.id)
    assert event.actor_type == "client" and event.details["source"] == "pastebin"
    # The API shows where it leaked.
    org, cid = guide_client.client.organization_id, guide_client.client_id
    shown = api.call("get", f"/organizations/{org}/clients/{cid}/secrets/{ours.id}").json()
    assert shown["secret"]["status"] == "LEAKED"
    assert shown["secret"]["leak"]["url"] == "https://paste.example/abc"
    assert shown["secret"]["leak"]["source"] == "pastebin"
    # Idempotent: the same report again, the same answer, no second event or mail.
    assert api.call("post", PATH, body).json() == response.json()
    assert AuditEvent.objects.filter(action="secret.leak").count() == 2
    run_worker()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["owner@acme.test"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "secrets"),
        ({"secrets": []}, "secrets"),
        ({"secrets": "m2ms_x"}, "secrets"),
        ({"secrets": [5]}, "secrets"),
        ({"secrets": ["x" * 513]}, "secrets"),
        ({"secrets": ["x"] * 101}, "secrets"),
        ({"secrets": ["x"], "url": 5}, "url"),
        ({"secrets": ["x"], "source": "s" * 65}, "source"),
        ({"secrets": ["x"], "extra": 1}, "extra"),
    ],
)
def test_bad_input_is_a_400_in_the_api_format(api, guide_client, body, field):
    response = api.call("post", PATH, body)
    found = violations(assert_error(response, 400, 3, "INVALID_ARGUMENT"))
    assert any(name.startswith(field) for name in found), found
    assert ClientSecret.objects.get(client=guide_client.client).status == "ACTIVE"


def test_it_needs_a_management_token(api, client, guide_client):
    body = {"secrets": [guide_client.secret]}
    assert_error(api.call("post", PATH, body, token=None), 401, 16)
    customer = request_token(client, guide_client).json()["access_token"]
    assert api.call("post", PATH, body, token=customer).status_code == 401
    assert ClientSecret.objects.get(client=guide_client.client).status == "ACTIVE"


def test_only_post(api):
    assert api.call("get", PATH).status_code == 405


def test_organization_settings(api, org, settings):
    path = f"/organizations/{org.id}"
    body = api.call("patch", path, {"on_leak": "notify", "secret_max_lifetime_days": 30}).json()
    assert body["organization"]["on_leak"] == "notify"
    assert body["organization"]["secret_max_lifetime_days"] == 30
    assert_error(api.call("patch", path, {"on_leak": "ignore"}), 400, 3)
    assert_error(api.call("patch", path, {"secret_max_lifetime_days": 0}), 400, 3)
    settings.OAUTH = {**settings.OAUTH, "SECRET_MAX_LIFETIME_DAYS_CAP": 90}
    found = violations(
        assert_error(api.call("patch", path, {"secret_max_lifetime_days": 91}), 400, 3)
    )
    assert "secret_max_lifetime_days" in found and "90" in found["secret_max_lifetime_days"]
    cleared = api.call("patch", path, {"secret_max_lifetime_days": None}).json()
    assert cleared["organization"]["secret_max_lifetime_days"] is None
    event = AuditEvent.objects.filter(action="organization.update").first()
    assert event.details["changes"]["secret_max_lifetime_days"] == [30, None]


def test_new_secrets_get_the_organization_lifetime(api, org, guide_client):
    from datetime import timedelta

    from django.utils import timezone

    api.call("patch", f"/organizations/{org.id}", {"secret_max_lifetime_days": 30})
    path = f"/organizations/{org.id}/clients/{guide_client.client_id}/secrets"
    created = api.call("post", path)
    assert created.status_code == 201
    secret = ClientSecret.objects.get(pk=created.json()["secret"]["id"])
    expected = timezone.now() + timedelta(days=30)
    assert abs((secret.expire_time - expected).total_seconds()) < 60
    # A shorter one is fine; a later one is refused, with the limit named.
    assert api.call("post", path, {"expiry_seconds": 86400}).status_code == 201
    refused = api.call("post", path, {"expiry_seconds": 31 * 86400})
    found = violations(assert_error(refused, 400, 3))
    assert "30 days" in found["expire_time"]


def test_the_secret_list_filters_unused_secrets(api, org, guide_client):
    from datetime import timedelta

    from django.utils import timezone

    path = f"/organizations/{org.id}/clients/{guide_client.client_id}/secrets"
    fresh = api.call("post", path).json()["secret"]["id"]
    old = timezone.now() - timedelta(days=91)
    ClientSecret.objects.filter(client=guide_client.client).exclude(pk=fresh).update(
        create_time=old, last_used_time=old
    )
    unused = api.call("get", path + "?unused=true").json()["secrets"]
    assert [x["unused"] for x in unused] == [True] and unused[0]["id"] != fresh
    assert [x["id"] for x in api.call("get", path + "?unused=false").json()["secrets"]] == [fresh]
    assert len(api.call("get", path).json()["secrets"]) == 2
    assert_error(api.call("get", path + "?unused=maybe"), 400, 3)
