"""Fixtures for the resource-server kit: a real tiny authorization server per test."""

from collections.abc import Iterator

import pytest

from oauth.verify import TokenVerifier
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
