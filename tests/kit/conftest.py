"""Fixtures of the kit's tests: a real tiny authorization server, and a verifier trusting it."""

from collections.abc import Iterator

import pytest

from m2m_auth_kit.verify import TokenVerifier
from tests.kit.server import AUDIENCE, KitServer


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
