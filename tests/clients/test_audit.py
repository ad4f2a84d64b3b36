"""clients.services.audit: one helper per kind of target, each filling in the whole row."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from clients.models import (
    ApiResource,
    ApiScope,
    AuditEvent,
    ClientKey,
    ClientSecret,
    Invitation,
    Membership,
)
from clients.services import Actor, management_client_create
from clients.services.audit import (
    audit_api,
    audit_client,
    audit_invitation,
    audit_key,
    audit_member,
    audit_organization,
    audit_record,
    audit_secret,
    audit_signing_key,
    audit_token,
)
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db

ALICE = Actor(type="user", id="7", display="alice", ip="10.1.2.3")


def row(event: AuditEvent) -> dict:
    """The stored row, as the audit log page and the API read it back."""
    event.refresh_from_db()
    return {
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "organization_id": event.organization_id,
        "client_id": event.client_id,
        "details": event.details,
    }


def test_the_row_names_the_actor_and_the_address():
    event = audit_signing_key(ALICE, "signing_key.rotate", "kid-1")
    event.refresh_from_db()
    assert (event.actor_type, event.actor_id, event.actor_display) == ("user", "7", "alice")
    assert event.source_ip == "10.1.2.3"


def test_a_system_change_has_no_address():
    event = audit_signing_key(SYSTEM, "signing_key.rotate", "kid-1")
    event.refresh_from_db()
    assert (event.actor_type, event.actor_display, event.source_ip) == ("system", "tests", None)


def test_audit_record_leaves_organization_client_and_details_empty():
    event = audit_record(actor=ALICE, action="x.y", target_type="x", target_id="1")
    assert row(event) == {
        "action": "x.y",
        "target_type": "x",
        "target_id": "1",
        "organization_id": "",
        "client_id": "",
        "details": {},
    }


def test_audit_organization(org):
    event = audit_organization(ALICE, "organization.update", org, details={"display_name": "A"})
    assert row(event) == {
        "action": "organization.update",
        "target_type": "organization",
        "target_id": org.id,
        "organization_id": org.id,
        "client_id": "",
        "details": {"display_name": "A"},
    }


def test_audit_client(org, guide_client):
    client = guide_client.client
    event = audit_client(ALICE, "client.update", client, details={"changed": ["name"]})
    assert row(event) == {
        "action": "client.update",
        "target_type": "client",
        "target_id": client.id,
        "organization_id": org.id,
        "client_id": client.id,
        "details": {"client_name": client.name, "changed": ["name"]},
    }


def test_a_management_clients_event_has_no_organization(db):
    client, _ = management_client_create(actor=SYSTEM, name="ops")
    event = audit_client(ALICE, "client.delete", client)
    assert row(event) == {
        "action": "client.delete",
        "target_type": "client",
        "target_id": client.id,
        "organization_id": "",
        "client_id": client.id,
        "details": {"client_name": "ops"},
    }


def test_audit_secret_names_the_secret_by_its_suffix(org, guide_client):
    secret = ClientSecret.objects.get(client=guide_client.client)
    event = audit_secret(ALICE, "secret.create", secret, details={"expire_time": None})
    assert row(event) == {
        "action": "secret.create",
        "target_type": "secret",
        "target_id": secret.id,
        "organization_id": org.id,
        "client_id": guide_client.client_id,
        "details": {
            "secret_suffix": guide_client.secret[-4:],
            "client_name": guide_client.client.name,
            "expire_time": None,
        },
    }
    assert guide_client.secret not in str(event.details)


def test_audit_key_names_the_key_by_its_kid(org, guide_client):
    key = ClientKey.objects.create(
        client=guide_client.client, kid="k1", kty="RSA", alg="RS256", jwk={"kty": "RSA"}
    )
    event = audit_key(ALICE, "client_key.delete", key)
    assert row(event) == {
        "action": "client_key.delete",
        "target_type": "client_key",
        "target_id": key.id,
        "organization_id": org.id,
        "client_id": guide_client.client_id,
        "details": {"kid": "k1", "client_name": guide_client.client.name},
    }


def test_audit_member_names_the_member_by_username(org):
    user = get_user_model().objects.create_user(username="bob@acme.test", password="x" * 12)
    membership = Membership.objects.create(user=user, organization=org, role="admin")
    event = audit_member(ALICE, "member.remove", membership, details={"role": "admin"})
    assert row(event) == {
        "action": "member.remove",
        "target_type": "member",
        "target_id": str(membership.pk),
        "organization_id": org.id,
        "client_id": "",
        "details": {"user": "bob@acme.test", "role": "admin"},
    }


def test_audit_invitation(org):
    invitation = Invitation.objects.create(organization=org, email="c@acme.test", role="viewer")
    event = audit_invitation(ALICE, "invitation.create", invitation, details={"role": "viewer"})
    assert row(event) == {
        "action": "invitation.create",
        "target_type": "invitation",
        "target_id": str(invitation.pk),
        "organization_id": org.id,
        "client_id": "",
        "details": {"role": "viewer"},
    }


def test_audit_api_files_a_scopes_event_under_its_api(db):
    api = ApiResource.objects.create(audience="deploy.test", name="Deploy")
    scope = ApiScope.objects.create(api=api, name="read")
    by_api = audit_api(ALICE, "api.update", api, details={"name": "Deploy"})
    by_scope = audit_api(ALICE, "api.scope_delete", scope, details={"scope": "read"})
    expected = {"target_type": "api", "target_id": str(api.pk), "organization_id": ""}
    assert row(by_api) == {
        **expected,
        "action": "api.update",
        "client_id": "",
        "details": {"name": "Deploy"},
    }
    assert row(by_scope) == {
        **expected,
        "action": "api.scope_delete",
        "client_id": "",
        "details": {"scope": "read"},
    }


def test_audit_signing_key():
    event = audit_signing_key(ALICE, "signing_key.withdraw", "kid-1", details={"replacement": None})
    assert row(event) == {
        "action": "signing_key.withdraw",
        "target_type": "signing_key",
        "target_id": "kid-1",
        "organization_id": "",
        "client_id": "",
        "details": {"replacement": None},
    }


def test_audit_token(org, guide_client):
    event = audit_token(
        ALICE,
        "token.revoke",
        "jti-1",
        client_id=guide_client.client_id,
        organization_id=org.id,
        details={"expire_time": "2030-01-01T00:00:00+00:00"},
    )
    assert row(event) == {
        "action": "token.revoke",
        "target_type": "token",
        "target_id": "jti-1",
        "organization_id": org.id,
        "client_id": guide_client.client_id,
        "details": {"expire_time": "2030-01-01T00:00:00+00:00"},
    }
