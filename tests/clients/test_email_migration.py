"""The e-mail migration: accounts move to lower case; a case clash is reported, not merged."""

from __future__ import annotations

import importlib
import io

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model

from clients.models import Invitation

pytestmark = pytest.mark.django_db

migration = importlib.import_module("clients.migrations.0008_email_lower_case")


def user(username: str):
    return get_user_model().objects.create_user(username=username, email=username, password="x")


def test_accounts_and_invitations_move_to_lower_case(org):
    mixed = user("Mixed.Case@example.com")
    staff = user("Admin")  # not an e-mail address: a staff name stays as it was made
    Invitation.objects.create(organization=org, email="New.Person@Example.COM", role="viewer")
    out = io.StringIO()
    assert migration.lower_case_emails(apps, None, out=out) == []
    mixed.refresh_from_db()
    staff.refresh_from_db()
    assert (mixed.username, mixed.email) == ("mixed.case@example.com", "mixed.case@example.com")
    assert staff.username == "Admin"
    assert Invitation.objects.get().email == "new.person@example.com"
    assert out.getvalue() == ""


def test_a_case_clash_is_reported_and_left_unchanged():
    first = user("Twice@example.com")
    second = user("twice@EXAMPLE.com")
    out = io.StringIO()
    report = migration.lower_case_emails(apps, None, out=out)
    assert report == [
        "e-mail case clash, accounts left unchanged: "
        f"Twice@example.com (id {first.pk}), twice@EXAMPLE.com (id {second.pk})"
    ]
    assert report[0] in out.getvalue()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.username, second.username) == ("Twice@example.com", "twice@EXAMPLE.com")
