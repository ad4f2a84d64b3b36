"""No control character in a name or description: one validator in the domain, every service."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from clients.models import ApiClient, Organization, validate_no_control_characters
from clients.services import (
    api_resource_create,
    client_create,
    client_update,
    organization_create,
    organization_update,
)
from portal.lib import mail
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db

BAD = [
    "Acme\nEvil: header",
    "Acme\r\nBcc: x@evil.test",
    "Acme\x00",
    "tab\there",
    "del\x7f",
    "c1\x85",
    "sep\u2028",
]


@pytest.mark.parametrize("value", BAD)
def test_the_validator_refuses_control_characters(value):
    with pytest.raises(ValidationError) as refused:
        validate_no_control_characters(value)
    assert refused.value.code == "control_characters"


@pytest.mark.parametrize("value", ["Acme Corp", "Ünïcode \u2013 \u201cquotes\u201d 日本", ""])
def test_the_validator_accepts_ordinary_text(value):
    validate_no_control_characters(value)


@pytest.mark.parametrize("value", BAD)
def test_every_name_field_is_refused_by_its_service(org, guide_client, value):
    attempts = {
        "display_name": lambda: organization_create(actor=SYSTEM, display_name=value),
        "name": lambda: client_create(actor=SYSTEM, organization=org, name=value),
        "description": lambda: client_update(
            actor=SYSTEM, client=guide_client.client, description=value
        ),
    }
    for field, attempt in attempts.items():
        with pytest.raises(ValidationError) as refused:
            attempt()
        assert field in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        organization_update(actor=SYSTEM, organization=org, display_name=value)
    assert "display_name" in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        api_resource_create(
            actor=SYSTEM, audience="x.example", name="X", scopes=[("read:x", value)]
        )
    with pytest.raises(ValidationError):
        api_resource_create(actor=SYSTEM, audience="y.example", name=value)
    assert Organization.objects.count() == 1 and ApiClient.objects.count() == 1
    org.refresh_from_db()
    assert org.display_name == "Acme Corp"


def test_a_mail_subject_is_one_printable_line_whatever_the_data(settings):
    from django.core import mail as outbox

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # Data stored before the validator existed may still hold a line break.
    mail.send(
        ["new@acme.test"],
        "portal/email/invitation",
        {"organization_name": "Acme\r\nBcc: evil@evil.test\x00", "link": "https://p/x"},
    )
    (sent,) = outbox.outbox
    assert sent.subject == "You are invited to Acme Bcc: evil@evil.test"
    assert sent.bcc == []
