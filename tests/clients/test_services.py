"""clients.services: the one door for every change, with its audit event."""

from __future__ import annotations

import re
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import close_old_connections

from clients.models import ApiClient, AuditEvent, ClientSecret, Organization, check_secret
from clients.services import (
    Actor,
    client_create,
    client_delete,
    client_update,
    management_client_create,
    organization_create,
    organization_update,
    secret_add,
    secret_delete,
    secrets_revoke_all,
)
from tests.clients.conftest import skip_unless_shared_database
from tests.conftest import GUIDE_CLIENT, SYSTEM

pytestmark = pytest.mark.django_db


def test_client_create_stores_only_an_argon2id_hash(org):
    client, plain = client_create(actor=SYSTEM, organization=org, **GUIDE_CLIENT)
    secret = ClientSecret.objects.get(client=client)
    assert plain.startswith("m2ms_")
    # The published format: prefix, 43 base62 characters (>= 256 bits), 6 of checksum.
    assert re.fullmatch(r"m2ms_[0-9A-Za-z]{43}[0-9A-Za-z]{6}", plain)
    assert secret.secret_hash.startswith("$argon2id$")
    assert plain not in secret.secret_hash
    assert secret.secret_suffix == plain[-4:]
    assert check_secret(plain, secret.secret_hash)
    assert not check_secret(plain + "x", secret.secret_hash)


def test_plain_secrets_differ(org):
    plains = {client_create(actor=SYSTEM, organization=org, name=f"c{i}")[1] for i in range(5)}
    assert len(plains) == 5


def test_secret_prefix_is_a_setting(org, settings):
    settings.OAUTH = {**settings.OAUTH, "SECRET_PREFIX": "live_"}
    assert client_create(actor=SYSTEM, organization=org, name="x")[1].startswith("live_")


def test_a_bad_client_changes_nothing(org):
    with pytest.raises(ValidationError) as error:
        client_create(actor=SYSTEM, organization=org, name="x", scopes=["ok", "ok"])
    assert "scopes[1]" in error.value.message_dict
    assert not ApiClient.objects.exists() and not ClientSecret.objects.exists()
    assert not AuditEvent.objects.filter(action="client.create").exists()


def test_update_refuses_unknown_fields(guide_client):
    with pytest.raises(ValidationError):
        client_update(actor=SYSTEM, client=guide_client.client, organization=None)


def test_every_change_writes_an_audit_event(org):
    actor = Actor(type="user", id="7", display="alice", ip="10.1.2.3")
    client, _ = client_create(actor=actor, organization=org, name="x")
    client_update(actor=actor, client=client, name="y")
    secret, _ = secret_add(actor=actor, client=client)
    secret_delete(actor=actor, secret=secret)
    client_delete(actor=actor, client=client)
    organization_update(actor=actor, organization=org, display_name="Acme 2")
    events = list(AuditEvent.objects.filter(actor_id="7").order_by("time", "id"))
    assert [e.action for e in events] == [
        "client.create",
        "secret.create",
        "client.update",
        "secret.create",
        "secret.delete",
        "client.delete",
        "organization.update",
    ]
    assert all(e.organization_id == org.id and e.source_ip == "10.1.2.3" for e in events)
    assert all(e.actor_display == "alice" for e in events)


def test_organization_external_id_is_unique(org):
    with pytest.raises(ValidationError):
        organization_create(actor=SYSTEM, display_name="again", external_id="acme")
    assert Organization.objects.count() == 1


def test_management_clients_live_in_no_organization(db, settings):
    client, plain = management_client_create(actor=SYSTEM, name="ops")
    assert client.id.startswith("skc_") and client.organization is None
    assert client.scopes == ["management"]
    assert client.audience == [settings.OAUTH["MANAGEMENT_AUDIENCE"]]
    assert plain.startswith("m2ms_")


def test_revoke_all_secrets(guide_client):
    secret_add(actor=SYSTEM, client=guide_client.client)
    assert secrets_revoke_all(actor=SYSTEM, client=guide_client.client) == 2
    assert not ClientSecret.objects.filter(client=guide_client.client).exists()


def test_a_second_delete_is_a_clean_no_op(guide_client):
    secret = ClientSecret.objects.get(client=guide_client.client)
    secret_delete(actor=SYSTEM, secret=secret)
    secret_delete(actor=SYSTEM, secret=secret)
    assert AuditEvent.objects.filter(action="secret.delete").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_adds_never_exceed_five_secrets(org):
    skip_unless_shared_database()
    client, _ = client_create(actor=SYSTEM, organization=org, name="racy")
    results: list[str] = []

    def add() -> None:
        try:
            secret_add(actor=SYSTEM, client=client)
            results.append("ok")
        except ValidationError:
            results.append("limit")
        finally:
            close_old_connections()

    threads = [threading.Thread(target=add) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ClientSecret.objects.filter(client=client).count() == 5
    assert results.count("ok") == 4 and results.count("limit") == 4
