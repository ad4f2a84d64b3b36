"""A token request's parts, parsed strictly: the form (RFC 6749 §3.2, one value per parameter
but RFC 8707's ``resource`` and ``audience``) and the client's credentials (§2.3.1: HTTP Basic or
the form; RFC 7523: a client assertion), exactly one way.

``token_request_of`` parses both once. The ASGI server (portal.serving.bridge) calls it before
the endpoint runs, to learn which client's rows to read ahead and whether this process verified
the secret already (then the request is answered on the event loop), and hands the result to the
endpoint, which uses it as it is: what decides where a request runs is what the endpoint checks.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_plus

from django.conf import settings

from clients.models import has_secret_prefix, secret_format_ok
from oauth import assertions
from oauth.token.lookup import could_be_client_id

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# Parameters that RFC 8707 (resource) and common practice (audience) allow more than once.
REPEATABLE = frozenset({"resource", "audience"})


class OAuthError(Exception):
    """An RFC 6749 §5.2 error response."""

    def __init__(
        self,
        error: str,
        description: str,
        status: int = 400,
        headers: dict[str, str] | None = None,
        count_as: str | None = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}
        # The reason the usage counts give it (``rate_limited``, ``quota_exceeded``): several
        # refusals share ``temporarily_unavailable``.
        self.count_as = count_as or error


def invalid_client(
    description: str = "client authentication failed", basic: bool = True
) -> OAuthError:
    headers = {"WWW-Authenticate": 'Basic realm="oauth", charset="UTF-8"'}
    return OAuthError("invalid_client", description, status=401, headers=headers)


def content_length_of(value: str | None) -> int | None:
    """The CONTENT_LENGTH header as a number; None when absent or not a number."""
    try:
        return int(value) if value else None
    except ValueError:
        return None


def read_form(
    content_type: str, content_length: int | None, read: Callable[[int], bytes]
) -> dict[str, list[str]]:
    """The form parameters, strictly: right content type, UTF-8, each at most once.

    ``read(n)`` returns up to ``n`` bytes of the request body. A body larger than
    DATA_UPLOAD_MAX_MEMORY_SIZE is refused before it is read when its length is announced.
    """
    media_type, _, parameters = content_type.partition(";")
    if media_type.strip().lower() != FORM_CONTENT_TYPE:
        raise OAuthError("invalid_request", f"the request body must be {FORM_CONTENT_TYPE}")
    charset = parameters.strip().lower()
    if charset and charset.replace(" ", "") not in ("charset=utf-8", 'charset="utf-8"'):
        raise OAuthError("invalid_request", "the request body must be UTF-8")
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and content_length is not None and content_length > limit:
        raise OAuthError("invalid_request", "the request body is too large", status=413)
    body = read(content_length if content_length is not None else (limit or 1 << 20) + 1)
    if limit is not None and len(body) > limit:
        raise OAuthError("invalid_request", "the request body is too large", status=413)
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise OAuthError("invalid_request", "the request body cannot be parsed") from exc
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        values = params.setdefault(name, [])
        if values and name not in REPEATABLE:
            raise OAuthError("invalid_request", f"parameter {name!r} is repeated")
        values.append(value)
    return params


def assertion_error(exc: assertions.AssertionRejected) -> OAuthError:
    if exc.error == "invalid_client":
        return invalid_client(exc.description)
    return OAuthError(exc.error, exc.description)


def decode_basic(value: str) -> tuple[str, str]:
    """(client_id, secret) of an HTTP Basic credential (what follows "Basic "); ValueError when
    malformed. RFC 6749 §2.3.1: the id and secret are form-urlencoded before base64."""
    decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    raw_id, colon, raw_secret = decoded.partition(":")
    if not colon:
        raise ValueError("no colon")
    return unquote_plus(raw_id), unquote_plus(raw_secret)


def client_credentials_from(
    authorization: str | None, params: dict[str, list[str]]
) -> tuple[str | None, str, str]:
    """(client_id, credential, method) from HTTP Basic, the form, or a client assertion.

    Exactly one method. For ``private_key_jwt`` the credential is the assertion and the
    client_id may be None (the assertion's ``iss`` names the client).
    """
    header = authorization
    if assertions.wants_assertion(params):
        try:
            form_id, assertion = assertions.assertion_credentials(
                params, has_authorization=header is not None
            )
        except assertions.AssertionRejected as exc:
            raise assertion_error(exc) from exc
        return form_id, assertion, "private_key_jwt"
    form_id = params.get("client_id", [None])[0]
    form_secret = params.get("client_secret", [None])[0]
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            raise invalid_client(
                "only HTTP Basic client authentication is accepted in Authorization"
            )
        try:
            client_id, client_secret = decode_basic(value)
        except ValueError as exc:
            raise invalid_client("malformed HTTP Basic credentials") from exc
        if form_secret is not None:
            raise OAuthError(
                "invalid_request", "use one client authentication method, not Basic and the form"
            )
        if form_id is not None and form_id != client_id:
            raise OAuthError("invalid_request", "client_id differs from the Basic credentials")
        return client_id, client_secret, "client_secret_basic"
    if form_id is not None and form_secret is not None:
        return form_id, form_secret, "client_secret_post"
    if form_id is not None:
        raise invalid_client("client_secret is missing")
    raise invalid_client("client authentication is required")


MAX_SECRET_LENGTH = 512


def could_be_secret(value: str) -> bool:
    """Whether a presented secret is worth a look: 1 to 512 characters (ours are far shorter),
    and, when it carries our secret prefix, well formed with a right checksum
    (``clients.models.secret_format_ok``). Anything else is refused before any query or hash;
    a secret of the old format (no prefix) takes the usual path."""
    if not 0 < len(value) <= MAX_SECRET_LENGTH:
        return False
    return not has_secret_prefix(value) or secret_format_ok(value)


def miswritten_secret(value: str) -> bool:
    """A presented secret that claims our format (it carries the prefix) but is malformed or
    has a wrong checksum: a guess or a typo, counted like a wrong secret."""
    return (
        0 < len(value) <= MAX_SECRET_LENGTH
        and has_secret_prefix(value)
        and (not secret_format_ok(value))
    )


SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})
# client_credentials_from's answer: (client_id, credential, method), or why it refused.
Credentials = tuple[str | None, str, str] | OAuthError


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A token request's form and credentials, parsed once (``token_request_of``).

    ``credentials`` is ``client_credentials_from``'s answer, or the error it raised: that error
    is the endpoint's to raise, after the grant type is checked, exactly as before."""

    params: dict[str, list[str]]
    credentials: Credentials

    @property
    def secret(self) -> tuple[str, str] | None:
        """(client_id, secret) when the request authenticates with a secret (Basic or the form)
        and names a possible client; None otherwise (an assertion, no or malformed credentials).

        Only such a request can have been verified by this process already; every other one
        needs the database or a signature check first, so the server never answers it on the
        event loop."""
        credentials = self.credentials
        if isinstance(credentials, OAuthError) or credentials[2] not in SECRET_METHODS:
            return None
        client_id, secret, _method = credentials
        if client_id is None or not could_be_client_id(client_id) or not could_be_secret(secret):
            return None
        return client_id, secret


def token_request_of(
    content_type: str,
    content_length: int | None,
    authorization: str | None,
    read: Callable[[int], bytes],
) -> TokenRequest:
    """The form (``read_form``) and the credentials it and ``authorization`` present; raises
    ``OAuthError`` when the form itself is refused."""
    params = read_form(content_type, content_length, read)
    try:
        credentials: Credentials = client_credentials_from(authorization, params)
    except OAuthError as error:
        credentials = error
    return TokenRequest(params, credentials)
