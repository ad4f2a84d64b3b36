"""Expiring secrets: optional expire_time or expiry_seconds when a secret is added."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from clients.models import ClientSecret
from tests.api.test_views import assert_error, secrets_path, snapshot
from tests.conftest import Credentials, request_token
from tests.oauth.token.test_endpoint import assert_oauth_error

pytestmark = pytest.mark.django_db


def test_the_default_is_never(api, guide_client):
    body = api.call("post", secrets_path(guide_client)).json()
    assert body["secret"]["expire_time"] is None
    assert body["secret"]["status"] == "ACTIVE"
    assert ClientSecret.objects.get(pk=body["secret"]["id"]).expire_time is None


def test_an_expired_secret_is_refused_and_shown_as_expired(api, client, guide_client):
    body = api.call("post", secrets_path(guide_client), {"expiry_seconds": 60}).json()
    creds = Credentials(guide_client.client, body["plain_secret"])
    assert request_token(client, creds).status_code == 200
    ClientSecret.objects.filter(pk=body["secret"]["id"]).update(
        expire_time=timezone.now() - timedelta(seconds=1)
    )
    assert_oauth_error(request_token(client, creds), 401, "invalid_client")
    shown = api.call("get", secrets_path(guide_client).removesuffix("/secrets")).json()["client"]
    statuses = {s["id"]: s["status"] for s in shown["secrets"]}
    assert statuses[body["secret"]["id"]] == "EXPIRED"
    # The other secret is untouched.
    assert request_token(client, guide_client).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"expire_time": "2030-01-01T00:00:00Z", "expiry_seconds": 3600},
        {"expiry_seconds": "3600"},
        {"expiry_seconds": 3600.5},
        {"expiry_seconds": 0},
        {"expiry_seconds": 11 * 365 * 86400},
        {"expire_time": 1234567890},
        {"expires_at": "2030-01-01T00:00:00Z"},
    ],
    ids=str,
)
def test_bad_expiry_bodies_are_400_and_change_nothing(api, guide_client, body):
    before = snapshot()
    assert_error(api.call("post", secrets_path(guide_client), body), 400, 3)
    assert snapshot() == before
