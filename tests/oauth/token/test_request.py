"""oauth.token.request: what a token request names, read strictly, once.

``token_request_of`` is what the ASGI bridge reads before the endpoint runs (which client's rows
to read ahead, and whether the secret may be answered on the loop) and what the endpoint then
uses. Its ``secret`` never guesses: a malformed credential, an assertion, an impossible
client_id or a refused form gives no secret at all, and a decoy body is read exactly as the
endpoint reads it.
"""

from __future__ import annotations

import base64
import io

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from oauth.token.request import (
    FORM_CONTENT_TYPE,
    SECRET_METHODS,
    OAuthError,
    TokenRequest,
    client_credentials_from,
    read_form,
)
from portal.serving.fastpath import TokenFastPath


def _basic(client_id: str, secret: str = "s") -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def parsed(authorization: str | None, body: bytes) -> TokenRequest | OAuthError:
    """The request as the server's fast path parses it before deciding where it runs."""
    environ = {
        "CONTENT_TYPE": FORM_CONTENT_TYPE,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    return TokenFastPath.parse(environ)


def secret_of(authorization: str | None, body: bytes) -> tuple[str, str] | None:
    request = parsed(authorization, body)
    return request.secret if isinstance(request, TokenRequest) else None


def endpoint_reading(authorization: str | None, body: bytes) -> tuple[str, str] | str:
    """How the endpoint, parsing the body itself (the Django view, any WSGI server), would
    authenticate this request: (client_id, secret) for a secret, else the method or the error."""
    try:
        params = read_form(FORM_CONTENT_TYPE, len(body), io.BytesIO(body).read)
        client_id, credential, method = client_credentials_from(authorization, params)
    except OAuthError as error:
        return error.error
    if method not in SECRET_METHODS:
        return method
    return client_id, credential


def checked_secret(reading: tuple[str, str] | str) -> tuple[str, str] | None:
    """The secret the endpoint will compare with the client's (argon2 unless verified)."""
    return reading if isinstance(reading, tuple) and reading[0] and reading[1] else None


@pytest.mark.parametrize(
    ("authorization", "body", "expected"),
    [
        (None, b"grant_type=client_credentials&client_id=m2morg_1&client_secret=x", "m2morg_1"),
        (None, b"client_id=a%2Bb+c&client_secret=x", "a+b c"),
        (_basic("m2morg_2"), b"grant_type=client_credentials", "m2morg_2"),
        (_basic("a%3Ab"), b"", "a:b"),  # RFC 6749 2.3.1: form-encoded before base64
        ("Basic !!!", b"", None),
        ("Basic " + base64.b64encode(b"no-colon").decode(), b"", None),
        ("Bearer abc", b"client_id=m2morg_1&client_secret=x", None),
        (None, b"client_id=m2morg_1&client_assertion=x.y.z", None),  # private_key_jwt
        (None, b"grant_type=client_credentials", None),
        (None, b"client_id=&client_secret=x", None),
        (None, b"client_id=" + b"x" * 65 + b"&client_secret=x", None),
        (None, b"client_id=\xff&client_secret=x", None),
        (None, b"client_id=m2morg_1&client_secret=", None),
        (None, b"client_id=m2morg_1&client_secret=" + b"s" * 513, None),
        (None, b"client_id=m2morg_1", None),  # no secret: refused before any row is read
    ],
)
def test_the_secret_is_read_from_basic_or_the_form(authorization, body, expected):
    secret = secret_of(authorization, body)
    assert (secret[0] if secret else None) == expected


@pytest.mark.parametrize(
    ("authorization", "body", "expected"),
    [
        (None, b"client_id=m2morg_1&client_secret=a%2Bb+c", ("m2morg_1", "a+b c")),
        (_basic("m2morg_2", "s%3Ae"), b"", ("m2morg_2", "s:e")),
    ],
)
def test_the_secret_is_decoded_as_presented(authorization, body, expected):
    assert secret_of(authorization, body) == expected


def test_a_client_id_with_a_nul_is_never_sent_to_the_batch():
    # PostgreSQL text cannot hold a NUL: a batch holding one would fail for every request in it.
    assert secret_of(None, b"client_id=m2morg_1%00&client_secret=s") is None
    assert secret_of(None, b"client_id=m2morg_1&client_secret=s") == ("m2morg_1", "s")


DECOYS = [
    # The decoys: an assertion's name as a value, or its name percent-encoded.
    (None, b"client_id=X&client_secret=wrong&x=client_assertion", ("X", "wrong")),
    (None, b"client_id=X&client%5Fsecret=wrong", ("X", "wrong")),
    (None, b"client%5Fid=X&client%5Fsecret=wrong", ("X", "wrong")),
    (None, b"client_id=X&client_secret=wrong&client%5Fassertion=a.b.c", "invalid_request"),
    (None, b"client_id=X&client_secret=wrong&client_assertion_type=x", "invalid_request"),
    (None, b"client_id=X&client_assertion_type=x&client_assertion=a.b.c", "invalid_client"),
    (None, b"client_id=X&client_secret=wrong&client_assertionx=1", ("X", "wrong")),
    (None, b"client_id=X&client_secret=wrong&aclient_assertion=1", ("X", "wrong")),
    # Duplicates (RFC 6749 3.2), plain or encoded: the form is refused.
    (None, b"client_id=X&client_secret=a&client_secret=b", "invalid_request"),
    (None, b"client_id=X&client_secret=a&client%5Fsecret=b", "invalid_request"),
    (None, b"client_id=X&client_id=Y&client_secret=a", "invalid_request"),
    (None, b"client_id=X&client_secret=a&grant_type=a&grant_type=b", "invalid_request"),
    # What a hand-made splitter would misread: '+', '%26', '%3D', ';', empty parts.
    (None, b"client_id=X&client_secret=a%26client_secret%3Db", ("X", "a&client_secret=b")),
    (None, b"client_id=X&client_secret=a+b", ("X", "a b")),
    (None, b"client_id=X;client_secret=a", "invalid_client"),
    (None, b"&&client_id=X&&client_secret=a&&", ("X", "a")),
    (None, b"client_id=X&client_secret", ("X", "")),
    (None, b"client_id=X&client_secret=%ff", "invalid_request"),
    (None, b"client_id=X&client_secret=\xff", "invalid_request"),
    (None, b"client_id=X&client_secret=%", ("X", "%")),
    (None, b"CLIENT_ID=X&CLIENT_SECRET=a", "invalid_client"),
    # Basic and the form together.
    (_basic("X", "a"), b"client_secret=b", "invalid_request"),
    (_basic("X", "a"), b"client_id=Y", "invalid_request"),
    (_basic("X", "a"), b"client_id=X", ("X", "a")),
    (_basic("X", "a"), b"client_assertion=a.b.c", "invalid_request"),
    ("basic " + base64.b64encode(b"X:a").decode(), b"", ("X", "a")),
    ("Basic " + base64.b64encode(b"X:a").decode() + "!", b"", "invalid_client"),
]


@pytest.mark.parametrize(("authorization", "body", "expected"), DECOYS)
def test_decoy_bodies_are_read_by_the_fast_path_exactly_as_by_the_endpoint(
    authorization, body, expected
):
    reading = endpoint_reading(authorization, body)
    assert reading == expected
    # The loop is asked about exactly the secret the endpoint will check, and about nothing
    # else (an empty secret is refused before any check).
    assert secret_of(authorization, body) == checked_secret(reading)


def test_the_endpoint_raises_the_credentials_error_it_was_handed():
    request = parsed(None, b"grant_type=client_credentials&client_id=X")
    assert isinstance(request, TokenRequest)
    assert isinstance(request.credentials, OAuthError)
    assert request.credentials.description == "client_secret is missing"
    refused = parsed(None, b"client_id=X&client_id=Y")
    assert isinstance(refused, OAuthError)
    assert refused.description == "parameter 'client_id' is repeated"


NAMES = [
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "grant_type",
    "scope",
    "x",
    "client%5Fsecret",
    "client%5Fid",
    "client%5Fassertion",
    "client_secret%00",
    "",
]
VALUES = ["X", "wrong", "client_assertion", "client_secret=s", "a%26b", "%ff", "+", "", "\u00e9"]


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES)), max_size=6),
    separator=st.sampled_from(["&", "&&", ";"]),
    basic=st.sampled_from([None, ("X", "a"), ("Y", "b"), ("X", "")]),
)
def test_any_mix_of_parameters_is_read_by_both_alike(pairs, separator, basic):
    body = separator.join(f"{name}={value}" for name, value in pairs).encode("utf-8")
    authorization = _basic(*basic) if basic else None
    assert secret_of(authorization, body) == checked_secret(endpoint_reading(authorization, body))
