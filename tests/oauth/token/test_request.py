"""oauth.token.request: what a token request names, read strictly.

``credentials_of`` is the hint the ASGI bridge and the batcher read before the endpoint runs:
which client's rows to read, and whether argon2 will run. It never guesses: a malformed
credential, an assertion or an impossible client_id gives no hint at all.
"""

from __future__ import annotations

import base64

import pytest

from oauth.token.request import credentials_of


def _basic(client_id: str, secret: str = "s") -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.mark.parametrize(
    ("authorization", "body", "expected"),
    [
        (None, b"grant_type=client_credentials&client_id=m2morg_1&client_secret=x", "m2morg_1"),
        (None, b"client_id=a%2Bb+c&client_secret=x", "a+b c"),
        (_basic("m2morg_2"), b"grant_type=client_credentials", "m2morg_2"),
        (_basic("a%3Ab"), b"", "a:b"),  # RFC 6749 2.3.1: form-encoded before base64
        ("Basic !!!", b"", None),
        ("Basic " + base64.b64encode(b"no-colon").decode(), b"", None),
        ("Bearer abc", b"client_id=m2morg_1", None),
        (None, b"client_id=m2morg_1&client_assertion=x.y.z", None),  # private_key_jwt
        (None, b"grant_type=client_credentials", None),
        (None, b"client_id=", None),
        (None, b"client_id=" + b"x" * 65, None),
        (None, b"client_id=\xff", None),
    ],
)
def test_the_client_id_hint_reads_basic_then_the_form(authorization, body, expected):
    credentials = credentials_of(authorization, body)
    assert (credentials[0] if credentials else None) == expected


@pytest.mark.parametrize(
    ("authorization", "body", "expected"),
    [
        (None, b"client_id=m2morg_1&client_secret=a%2Bb+c", ("m2morg_1", "a+b c")),
        (None, b"client_id=m2morg_1", ("m2morg_1", None)),
        (_basic("m2morg_2", "s%3Ae"), b"client_secret=ignored", ("m2morg_2", "s:e")),
        (_basic("m2morg_2", ""), b"", ("m2morg_2", "")),
    ],
)
def test_the_credentials_hint_carries_the_presented_secret(authorization, body, expected):
    assert credentials_of(authorization, body) == expected


def test_the_batch_is_not_asked_for_a_client_id_with_a_nul():
    # PostgreSQL text cannot hold a NUL: a batch holding one would fail for every request in it.
    assert credentials_of(None, b"client_id=m2morg_1%00&client_secret=s") is None
    assert credentials_of(None, b"client_id=m2morg_1&client_secret=s") == ("m2morg_1", "s")
