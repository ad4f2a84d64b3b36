"""Fixtures of the oauth tests: the resource-server kit's real tiny authorization server, and
keys registered for private_key_jwt."""

from collections.abc import Iterator

import pytest

from clients.services import client_key_add
from m2m_auth_kit.verify import TokenVerifier
from tests.assertion_helpers import Signer, ec_key, public_jwk, rsa_key
from tests.conftest import SYSTEM
from tests.kitserver import AUDIENCE, KitServer


@pytest.fixture
def kit() -> Iterator[KitServer]:
    """A fresh authorization server on 127.0.0.1, stopped after the test."""
    server = KitServer().start()
    yield server
    server.stop()


@pytest.fixture
def verifier(kit: KitServer) -> TokenVerifier:
    """A verifier trusting ``kit``, with keys discovered and a short refetch window."""
    return TokenVerifier(kit.issuer, audience=AUDIENCE, min_refetch_interval=0.2)


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
