"""Fixtures of the oauth tests: keys registered for private_key_jwt."""

import pytest

from clients.services import client_key_add
from tests.assertion_helpers import Signer, ec_key, public_jwk, rsa_key
from tests.conftest import SYSTEM


@pytest.fixture
def rs256(guide_client) -> Signer:
    """An RS256 key registered for the guide's client (kid ``rsa-1``)."""
    key = rsa_key()
    client_key_add(actor=SYSTEM, client=guide_client.client, jwk=public_jwk(key, kid="rsa-1"))
    return Signer(key, "RS256", "rsa-1")


@pytest.fixture
def es256(guide_client) -> Signer:
    """An ES256 key registered for the guide's client (kid ``ec-1``)."""
    key = ec_key()
    client_key_add(actor=SYSTEM, client=guide_client.client, jwk=public_jwk(key, kid="ec-1"))
    return Signer(key, "ES256", "ec-1")
