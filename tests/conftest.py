"""Named actors and helpers shared by the suite."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import quote_plus, urlencode

import pytest
from django.test import Client

from clients.models import ApiClient, Organization
from clients.services import Actor, client_create, management_client_create, organization_create
from m2m_auth_kit.guards import reset_verifier
from oauth import stats
from oauth.token.authenticate import forget_verified_secrets

SYSTEM = Actor.system("tests")

GUIDE_CLIENT = {
    "name": "GitHub Actions Deployment Service",
    "description": "Service account for GitHub Actions to deploy applications to production",
    "custom_claims": [
        {"key": "github_repository", "value": "acmecorp/inventory-service"},
        {"key": "environment", "value": "production_us"},
    ],
    "scopes": ["deploy:applications", "read:deployments"],
    "audience": ["deployment-api.acmecorp.com"],
    "expiry": 3600,
}


@dataclass
class Credentials:
    client: ApiClient
    secret: str

    @property
    def client_id(self) -> str:
        return self.client.id

    def basic(self) -> str:
        raw = f"{quote_plus(self.client.id)}:{quote_plus(self.secret)}"
        return "Basic " + base64.b64encode(raw.encode()).decode()


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    # Each test has its own database, so its own signing keys and secrets.
    forget_verified_secrets()
    reset_verifier()
    # A fresh minute: no test sees another test's token counts flushed into its database.
    stats.counter.reset()
    yield
    forget_verified_secrets()
    reset_verifier()


@pytest.fixture
def org(db) -> Organization:
    return organization_create(actor=SYSTEM, display_name="Acme Corp", external_id="acme")


@pytest.fixture
def other_org(db) -> Organization:
    return organization_create(actor=SYSTEM, display_name="Globex", external_id="globex")


@pytest.fixture
def guide_client(org) -> Credentials:
    client, secret = client_create(actor=SYSTEM, organization=org, **GUIDE_CLIENT)
    return Credentials(client, secret)


@pytest.fixture
def other_client(other_org) -> Credentials:
    client, secret = client_create(
        actor=SYSTEM, organization=other_org, name="Globex bot", scopes=["read:deployments"]
    )
    return Credentials(client, secret)


@pytest.fixture
def management(db) -> Credentials:
    client, secret = management_client_create(actor=SYSTEM, name="tests")
    return Credentials(client, secret)


FORM = "application/x-www-form-urlencoded"


def post_form(client: Client, path: str, data: dict | list, **extra) -> object:
    """POST ``data`` form-encoded (a list of pairs allows repeated names)."""
    return client.post(path, urlencode(data, doseq=True), content_type=FORM, **extra)


def request_token(client: Client, creds: Credentials, **form) -> object:
    data = {
        "grant_type": "client_credentials",
        "client_id": creds.client_id,
        "client_secret": creds.secret,
        **form,
    }
    return post_form(client, "/oauth/token", data)
