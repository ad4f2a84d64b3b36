"""Audit events as sentences: names as they were kept on the event, before -> after."""

from __future__ import annotations

import pytest

from clients.activity import event_sentence
from clients.models import AuditEvent
from clients.services import (
    Actor,
    client_delete,
    client_update,
    member_role_change,
    organization_update,
    secret_delete,
)

pytestmark = pytest.mark.django_db

OWNER = Actor(type="user", id="1", display="owner@example.com")


def last(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("time", "id")


def test_a_revocation_names_the_secret_and_the_client(guide_client):
    secret = guide_client.client.secrets.get()
    secret_delete(actor=OWNER, secret=secret)
    assert event_sentence(last("secret.delete")) == (
        f"owner@example.com revoked secret …{secret.secret_suffix} "
        "of GitHub Actions Deployment Service"
    )


def test_a_deleted_client_still_reads_with_its_name(guide_client):
    client_delete(actor=OWNER, client=guide_client.client)
    event = last("client.delete")
    assert event_sentence(event) == (
        "owner@example.com deleted client GitHub Actions Deployment Service"
    )


def test_updates_say_before_and_after(org, guide_client):
    client_update(actor=OWNER, client=guide_client.client, scopes=[], description="new")
    assert event_sentence(last("client.update")) == (
        "owner@example.com updated client GitHub Actions Deployment Service (description: "
        "Service account for GitHub Actions to deploy applications to production → new; "
        "scopes: deploy:applications, read:deployments → (none))"
    )
    organization_update(actor=OWNER, organization=org, display_name="Acme Inc")
    assert event_sentence(last("organization.update")) == (
        "owner@example.com updated the organization (name: Acme Corp → Acme Inc)"
    )


def test_a_role_change_names_the_member(owner, admin, org):
    membership = admin.memberships.get()
    member_role_change(actor=OWNER, membership=membership, role="viewer")
    assert event_sentence(last("member.role_change")) == (
        "owner@example.com changed the role of admin@acme.test: admin → viewer"
    )


def test_an_older_event_falls_back_to_the_names_known_now_then_to_ids():
    event = AuditEvent(
        actor_type="client",
        actor_id="skc_1",
        action="client.create",
        target_type="client",
        target_id="m2morg_1",
        client_id="m2morg_1",
        details={},
    )
    assert event_sentence(event, {"m2morg_1": "Billing"}) == (
        "API client skc_1 registered client Billing"
    )
    assert event_sentence(event) == "API client skc_1 registered client m2morg_1"
    event.action = "something.new"
    assert event_sentence(event) == "API client skc_1 did something.new on client m2morg_1"
