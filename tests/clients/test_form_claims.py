"""One-time form tokens: the first submission claims the token, every other one is refused."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from clients.models import ApiClient, AuditEvent, ClientSecret, FormClaim, Invitation
from clients.services import (
    AlreadySubmitted,
    client_create,
    client_delete,
    invitation_create,
    management_client_create,
    secret_add,
)
from tests.clients.conftest import skip_unless_shared_database
from tests.conftest import GUIDE_CLIENT, SYSTEM

pytestmark = pytest.mark.django_db


def test_a_second_submission_names_the_client_of_the_first(org):
    first, _ = client_create(actor=SYSTEM, organization=org, form_token="t1", **GUIDE_CLIENT)
    with pytest.raises(AlreadySubmitted) as refused:
        client_create(actor=SYSTEM, organization=org, form_token="t1", **GUIDE_CLIENT)
    assert refused.value.target_id == first.id
    assert ApiClient.objects.filter(organization=org).count() == 1


def test_a_token_of_another_organization_names_nothing(org, other_org):
    client_create(actor=SYSTEM, organization=org, form_token="t2", **GUIDE_CLIENT)
    with pytest.raises(AlreadySubmitted) as refused:
        client_create(actor=SYSTEM, organization=other_org, form_token="t2", **GUIDE_CLIENT)
    assert refused.value.target_id == ""
    assert not ApiClient.objects.filter(organization=other_org).exists()


def test_a_refused_creation_leaves_its_token_unclaimed(org):
    with pytest.raises(ValidationError):
        client_create(actor=SYSTEM, organization=org, form_token="t3", name="")
    assert not FormClaim.objects.filter(token="t3").exists()
    client_create(actor=SYSTEM, organization=org, form_token="t3", name="fixed")
    assert ApiClient.objects.filter(organization=org).count() == 1


def test_secret_generation_and_management_clients_claim_their_token(guide_client, db):
    secret_add(actor=SYSTEM, client=guide_client.client, form_token="s1")
    with pytest.raises(AlreadySubmitted) as refused:
        secret_add(actor=SYSTEM, client=guide_client.client, form_token="s1")
    assert refused.value.target_id == guide_client.client.id
    assert ClientSecret.objects.filter(client=guide_client.client).count() == 2
    management_client_create(actor=SYSTEM, name="ops", form_token="m1")
    with pytest.raises(AlreadySubmitted):
        management_client_create(actor=SYSTEM, name="ops", form_token="m1")
    assert ApiClient.objects.filter(name="ops").count() == 1


def test_an_invitation_form_sent_twice_invites_once(org, owner):
    invite = dict(organization=org, email="new@acme.test", role="viewer", invited_by=owner)
    invitation_create(actor=SYSTEM, form_token="i1", **invite)
    with pytest.raises(AlreadySubmitted):
        invitation_create(actor=SYSTEM, form_token="i1", **invite)
    assert Invitation.objects.filter(organization=org).count() == 1


def test_a_second_client_delete_changes_nothing(guide_client):
    assert client_delete(actor=SYSTEM, client=guide_client.client) is True
    assert client_delete(actor=SYSTEM, client=guide_client.client) is False
    assert AuditEvent.objects.filter(action="client.delete").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_submissions_of_one_form_create_one_client(org):
    skip_unless_shared_database()
    results: list[str] = []
    barrier = threading.Barrier(8)

    def submit() -> None:
        barrier.wait()
        try:
            client_create(actor=SYSTEM, organization=org, form_token="race", name="racy")
            results.append("created")
        except AlreadySubmitted:
            results.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["created"] + ["refused"] * 7
    assert ApiClient.objects.filter(organization=org).count() == 1
