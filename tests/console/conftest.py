"""Staff actors and a populated console: every admin page has something to show."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from clients.models import ClientSecret, Membership, WebhookDelivery
from clients.services import (
    account_signup,
    account_signup_confirm,
    api_resource_create,
    organization_restrict_apis,
    secret_add,
    webhook_endpoint_create,
    webhook_endpoint_test,
)
from oauth import keys
from oauth.models import TokenStat
from tests.conftest import SYSTEM, Credentials


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser(
        username="root", email="root@provider.example", password="x" * 12
    )


@pytest.fixture
def staff_nobody(db):
    """Staff, but without a single permission."""
    return get_user_model().objects.create_user(
        username="intern", email="intern@provider.example", password="x" * 12, is_staff=True
    )


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


@dataclass
class Console:
    """Plain secrets handed out while populating: none may ever appear on an admin page."""

    plain_secrets: list[str] = field(default_factory=list)
    credentials: dict[str, Credentials] = field(default_factory=dict)


@pytest.fixture
def console(db, org, guide_client, management, other_client) -> Console:
    account_signup(email="owner@acme.example", password="x" * 12, organization_name="Owner Inc")
    pending = get_user_model().objects.get(username="owner@acme.example")
    user, own_org, _ = account_signup_confirm(user=pending, organization_name="Owner Inc")
    Membership.objects.create(user=user, organization=org, role=Membership.Role.ADMIN)
    api = api_resource_create(
        actor=SYSTEM,
        audience="deployment-api.acmecorp.com",
        name="Deployments",
        scopes=[("deploy:applications", "Deploy"), ("read:deployments", "Read")],
    )
    organization_restrict_apis(actor=SYSTEM, organization=own_org, apis=[api])
    _, second = secret_add(
        actor=SYSTEM, client=guide_client.client, expire_time=timezone.now() + timedelta(days=1)
    )
    # An expired one, to show the EXPIRED status.
    expired, third = secret_add(
        actor=SYSTEM, client=guide_client.client, expire_time=timezone.now() + timedelta(days=1)
    )
    ClientSecret.objects.filter(pk=expired.pk).update(
        expire_time=timezone.now() - timedelta(hours=1)
    )
    keys.ensure_signing_key()
    keys.rotate_signing_key()  # a retired key too
    TokenStat.objects.create(
        hour=timezone.now().replace(minute=0, second=0, microsecond=0), issued=7, failed=2
    )
    Group.objects.create(name="support")
    endpoint, signing_secret = webhook_endpoint_create(
        actor=SYSTEM, organization=org, url="https://hooks.example.com/acme"
    )
    event = webhook_endpoint_test(actor=SYSTEM, endpoint=endpoint)
    WebhookDelivery.objects.create(
        endpoint=endpoint, event=event, attempt=1, status="failed", response_code=500
    )
    return Console(
        plain_secrets=[
            guide_client.secret,
            management.secret,
            other_client.secret,
            second,
            third,
            signing_secret,
        ],
        credentials={"guide": guide_client, "management": management, "other": other_client},
    )


def forbidden_material() -> list[str]:
    """What no admin page may contain: hashes, encrypted private keys, PEM headers."""
    from oauth.models import SigningKey

    material = ["$argon2", "PRIVATE KEY", "gAAAAA"]
    material += list(ClientSecret.objects.values_list("secret_hash", flat=True))
    material += [k[:40] for k in SigningKey.objects.values_list("private_key_encrypted", flat=True)]
    return material


def assert_clean(content: bytes, console: Console, extra: list[str] | None = None) -> None:
    text = content.decode()
    for needle in [*forbidden_material(), *console.plain_secrets, *(extra or [])]:
        assert needle not in text, f"admin page leaks {needle[:12]}…"
