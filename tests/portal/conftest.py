"""Named actors for the portal: an owner, an admin and a viewer of Acme, and an outsider."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from clients.models import Membership
from clients.services import api_resource_create
from tests.conftest import GUIDE_CLIENT, SYSTEM

PASSWORD = "correct horse battery staple"


def make_user(email: str):
    return get_user_model().objects.create_user(username=email, email=email, password=PASSWORD)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def catalog(db):
    """The guide's API, as ``bootstrap --demo`` seeds it, and a second one."""
    deployment = api_resource_create(
        actor=SYSTEM,
        audience="deployment-api.acmecorp.com",
        name="Deployment API",
        description="Deploy applications",
        scopes=[
            ("deploy:applications", "Deploy applications"),
            ("read:deployments", "Read deployments"),
        ],
    )
    billing = api_resource_create(
        actor=SYSTEM,
        audience="billing-api.acmecorp.com",
        name="Billing API",
        scopes=[("read:invoices", "Read invoices")],
    )
    return {"deployment": deployment, "billing": billing}


@pytest.fixture
def owner(org):
    user = make_user("owner@acme.test")
    Membership.objects.create(user=user, organization=org, role=Membership.Role.OWNER)
    return user


@pytest.fixture
def admin(org):
    user = make_user("admin@acme.test")
    Membership.objects.create(user=user, organization=org, role=Membership.Role.ADMIN)
    return user


@pytest.fixture
def viewer(org):
    user = make_user("viewer@acme.test")
    Membership.objects.create(user=user, organization=org, role=Membership.Role.VIEWER)
    return user


@pytest.fixture
def outsider(other_org):
    user = make_user("outsider@globex.test")
    Membership.objects.create(user=user, organization=other_org, role=Membership.Role.OWNER)
    return user


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


def guide_form(**overrides) -> list[tuple[str, str]]:
    """The guide's client as the register form sends it (repeated names as pairs)."""
    data = {
        "name": GUIDE_CLIENT["name"],
        "description": GUIDE_CLIENT["description"],
        "expiry": "3600",
        **overrides,
    }
    pairs = [(k, v) for k, v in data.items() if not isinstance(v, list)]
    pairs += [("audience", a) for a in overrides.get("audience", GUIDE_CLIENT["audience"])]
    pairs += [("scopes", s) for s in overrides.get("scopes", GUIDE_CLIENT["scopes"])]
    for claim in GUIDE_CLIENT["custom_claims"]:
        pairs += [("claim_key", claim["key"]), ("claim_value", claim["value"])]
    return pairs
