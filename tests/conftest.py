"""Named actors and helpers shared by the suite: organizations and their clients, a management
client, and people (an owner, an admin and a viewer of Acme, and an outsider from Globex)."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from urllib.parse import quote_plus, urlencode

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from clients.models import ApiClient, Membership, Organization
from clients.services import Actor, client_create, management_client_create, organization_create
from m2m_auth_kit.guards import reset_verifier
from oauth import quotas, stats
from oauth.token.authenticate import forget_verified_secrets
from portal.api.authentication import reset_management_verifier

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
    reset_management_verifier()
    # A fresh minute: no test sees another test's token counts flushed into its database.
    stats.counter.reset()
    stats.set_clock(None)
    quotas.reset()
    yield
    stats.set_clock(None)
    forget_verified_secrets()
    reset_verifier()
    reset_management_verifier()


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


PASSWORD = "correct horse battery staple"


def make_user(email: str):
    return get_user_model().objects.create_user(username=email, email=email, password=PASSWORD)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def member(email: str, organization: Organization, role: str):
    """A user who belongs to ``organization`` with ``role``."""
    user = make_user(email)
    Membership.objects.create(user=user, organization=organization, role=role)
    return user


@pytest.fixture
def owner(org):
    return member("owner@acme.test", org, Membership.Role.OWNER)


@pytest.fixture
def admin(org):
    return member("admin@acme.test", org, Membership.Role.ADMIN)


@pytest.fixture
def viewer(org):
    return member("viewer@acme.test", org, Membership.Role.VIEWER)


@pytest.fixture
def outsider(other_org):
    return member("outsider@globex.test", other_org, Membership.Role.OWNER)


@pytest.fixture
def as_owner(owner) -> Client:
    return logged_in(owner)


@pytest.fixture
def as_admin(admin) -> Client:
    return logged_in(admin)


@pytest.fixture
def as_viewer(viewer) -> Client:
    return logged_in(viewer)


@pytest.fixture
def as_outsider(outsider) -> Client:
    return logged_in(outsider)


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


def run_worker() -> str:
    """``manage.py run_worker --once``: run the outbox tasks due now; its summary line."""
    out = io.StringIO()
    call_command("run_worker", "--once", stdout=out)
    return out.getvalue()
