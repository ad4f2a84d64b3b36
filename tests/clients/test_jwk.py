"""Clients' public keys at the domain level: what ``parse_public_jwk`` and the service accept."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from clients.jwk import RSA_EXPONENT, JWKError, parse_public_jwk
from clients.models import ClientKey
from clients.services import client_key_add
from tests.assertion_helpers import public_jwk, rsa_key
from tests.conftest import SYSTEM


def test_an_rsa_key_of_2048_bits_with_e_65537_is_accepted():
    parsed = parse_public_jwk(public_jwk(rsa_key()))
    assert parsed.jwk["e"] == "AQAB"
    assert parsed.public_key.public_numbers().e == RSA_EXPONENT == 65537


@pytest.mark.parametrize(
    ("make", "field", "words"),
    [
        (lambda: public_jwk(rsa_key(9, exponent=3)), "e", "65537"),
        (lambda: {**public_jwk(rsa_key()), "e": "AQAD"}, "e", "65537"),  # 65539
        (lambda: public_jwk(rsa_key(9, bits=1024)), "n", "2048"),
        (lambda: public_jwk(rsa_key(9, bits=1024, exponent=3)), "n", "2048"),
    ],
    ids=["e=3", "e=65539", "1024 bits", "1024 bits and e=3"],
)
def test_weak_rsa_keys_are_refused(make, field, words):
    with pytest.raises(JWKError) as refused:
        parse_public_jwk(make())
    assert refused.value.field == field and words in refused.value.message


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bits", "exponent", "field"), [(2048, 3, "jwk.e"), (1024, 65537, "jwk.n")]
)
def test_the_service_refuses_a_weak_rsa_key_and_stores_nothing(guide_client, bits, exponent, field):
    with pytest.raises(ValidationError) as refused:
        client_key_add(
            actor=SYSTEM,
            client=guide_client.client,
            jwk=public_jwk(rsa_key(9, bits=bits, exponent=exponent)),
        )
    assert list(refused.value.message_dict) == [field]
    assert not ClientKey.objects.exists()
