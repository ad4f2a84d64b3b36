"""The OAuth endpoints: token (RFC 6749 §4.4), JWKS, and discovery (RFC 8414).

Introspection and revocation live in ``oauth.views_tokens`` and reuse ``authenticate_client``.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from clients.jwk import ASSERTION_ALGORITHMS
from clients.models import ApiScope
from oauth import assertions, keys, ratelimit
from oauth import metrics as token_metrics
from oauth.tokens import (
    AuthenticatedClient,
    authenticate_with_secret,
    could_be_client_id,
    issue_token,
    recently_verified,
    verification_key,
)
from portal.lib.encoding import compact_json
from portal.lib.logs import log_context
from portal.lib.net import client_ip

logger = logging.getLogger("oauth.token")

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
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}


def json_response(
    body: dict[str, Any], status: int = 200, headers: dict | None = None
) -> HttpResponse:
    response = HttpResponse(compact_json(body), status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def oauth_error_response(error: OAuthError) -> HttpResponse:
    """An RFC 6749 §5.2 error as a Django response (introspection and revocation)."""
    return json_response(
        {"error": error.error, "error_description": error.description},
        status=error.status,
        headers={**NO_STORE, **error.headers},
    )


def method_not_allowed(allowed: str) -> HttpResponse:
    return json_response(
        {"error": "invalid_request", "error_description": f"method not allowed; use {allowed}"},
        status=405,
        headers={"Allow": allowed, **NO_STORE},
    )


def invalid_client(
    description: str = "client authentication failed", basic: bool = True
) -> OAuthError:
    headers = {"WWW-Authenticate": 'Basic realm="oauth", charset="UTF-8"'}
    return OAuthError("invalid_client", description, status=401, headers=headers)


def too_many_failures(limited: ratelimit.RateLimited) -> OAuthError:
    """429 for a locked client_id or address (RFC 6749 has no code for it; RFC 6585 has 429).

    ``temporarily_unavailable`` rather than ``invalid_client``: a client whose id an attacker is
    hammering must read "wait", not "your credentials are wrong".
    """
    return OAuthError(
        "temporarily_unavailable",
        f"too many failed attempts; retry after {limited.retry_after} s",
        status=429,
        headers={"Retry-After": str(limited.retry_after)},
    )


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


def _assertion_error(exc: assertions.AssertionRejected) -> OAuthError:
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
            raise _assertion_error(exc) from exc
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


def _requested_scopes(params: dict[str, list[str]], registered: list[str]) -> list[str]:
    raw = params.get("scope", [""])[0]
    requested = raw.split()
    if not requested:
        return list(registered)
    unknown = [scope for scope in requested if scope not in registered]
    if unknown:
        raise OAuthError("invalid_scope", "requested scope is not granted to this client")
    # Keep the registered order, once each.
    wanted = set(requested)
    return [scope for scope in registered if scope in wanted]


def _requested_audience(params: dict[str, list[str]], registered: list[str]) -> list[str]:
    requested: list[str] = []
    for name in ("audience", "resource"):
        for value in params.get(name, []):
            requested.extend(value.split() if name == "audience" else [value])
    if not requested:
        return list(registered)
    if any(aud not in registered for aud in requested):
        raise OAuthError("invalid_target", "requested audience is not registered for this client")
    wanted = set(requested)
    return [aud for aud in registered if aud in wanted]


def authenticate_client(
    authorization: str | None,
    params: dict[str, list[str]],
    log: dict[str, Any],
    ip: str | None,
) -> tuple[AuthenticatedClient, str]:
    """The calling client and its method: a secret (Basic or post) or an assertion.

    Raises ``invalid_client`` when authentication fails, and 429 once the client_id or the
    address has failed too often (oauth.ratelimit; failures are counted, successes never write).
    Shared by the token, introspection and revocation endpoints; ``log`` receives the access-log
    fields (never a credential).
    """
    try:
        client_id, credential, method = client_credentials_from(authorization, params)
    except OAuthError as error:
        if error.error == "invalid_client":
            ratelimit.hit(ratelimit.token_failure_counters(params.get("client_id", [""])[0], ip))
        raise
    presented = token_metrics.loggable_client_id(client_id) if client_id else None
    if presented:
        log["client_id"] = presented
    # The verification cache's key, computed once for both questions asked of it below.
    key = verification_key(client_id or "", credential) if method != "private_key_jwt" else None
    if key is None or not recently_verified(key):
        # Only a request that must verify a credential asks the shared store (one read) whether
        # its client_id or address is locked; a secret this process already verified goes on.
        try:
            ratelimit.check(ratelimit.token_failure_counters(client_id, ip))
        except ratelimit.RateLimited as limited:
            raise too_many_failures(limited) from None
    try:
        client = _verified_client(client_id, credential, method, key)
    except OAuthError as error:
        if error.error == "invalid_client":
            ratelimit.hit(ratelimit.token_failure_counters(client_id, ip))
        raise
    log["client_id"] = client.client_id
    if client.organization_id:
        log["organization_id"] = client.organization_id
    return client, method


def _verified_client(
    client_id: str | None, credential: str, method: str, key: bytes | None
) -> AuthenticatedClient:
    if method == "private_key_jwt":
        try:
            return assertions.authenticate_with_assertion(credential, client_id)
        except assertions.AssertionRejected as exc:
            raise _assertion_error(exc) from exc
    if client_id is None or not could_be_client_id(client_id) or not 0 < len(credential) <= 512:
        raise invalid_client()
    client = authenticate_with_secret(client_id, credential, key)
    if client is None:
        raise invalid_client()
    return client


def request_form(request: HttpRequest) -> dict[str, list[str]]:
    """``read_form`` for a Django request (the introspection and revocation endpoints)."""
    meta = request.META
    return read_form(
        meta.get("CONTENT_TYPE", ""), content_length_of(meta.get("CONTENT_LENGTH")), request.read
    )


# The token endpoint's answer, independent of any web framework: (status, headers, JSON body).
# The Django view below and the WSGI fast path (oauth/wsgi.py) both serve token_endpoint().
TokenAnswer = tuple[int, dict[str, str], bytes]
JSON_CONTENT_TYPE = "application/json"


def _answer(body: dict[str, Any], status: int = 200, headers: dict | None = None) -> TokenAnswer:
    return (
        status,
        {"Content-Type": JSON_CONTENT_TYPE, **NO_STORE, **(headers or {})},
        compact_json(body),
    )


def _token(
    content_type: str,
    content_length: int | None,
    authorization: str | None,
    read: Callable[[int], bytes],
    log: dict[str, Any],
    ip: str | None,
) -> TokenAnswer:
    params = read_form(content_type, content_length, read)
    grant_type = params.get("grant_type", [None])[0]
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required")
    if grant_type != "client_credentials":
        raise OAuthError("unsupported_grant_type", "only client_credentials is supported")
    client, auth_method = authenticate_client(authorization, params, log, ip)
    scopes = _requested_scopes(params, client.scopes)
    audience = _requested_audience(params, client.audience)
    token = issue_token(client, scopes=scopes, audience=audience)
    body: dict[str, Any] = {
        "access_token": token.access_token,
        "token_type": "Bearer",
        "expires_in": token.expires_in,
    }
    if token.scopes:
        body["scope"] = " ".join(token.scopes)
    token_metrics.record_token_issued(auth_method)
    log.update(outcome="token_issued", auth_method=auth_method)
    return _answer(body)


def token_endpoint(
    method: str,
    content_type: str,
    content_length: int | None,
    authorization: str | None,
    read: Callable[[int], bytes],
    log: dict[str, Any],
    client_ip: str | None = None,
) -> TokenAnswer:
    """POST /oauth/token (the client_credentials grant), from the parts of an HTTP request.

    ``read(n)`` returns up to ``n`` bytes of the body; it is called at most once. The metrics
    are counted here; ``log`` receives the fields of the access-log line (``client_id``,
    ``organization_id``, ``outcome``, ``auth_method``), never a credential. ``client_ip``
    (from portal.lib.net.client_ip) keys the per-address failure limit.
    """
    if method != "POST":
        return _refused(
            OAuthError("invalid_request", "method not allowed; use POST", 405, {"Allow": "POST"}),
            log,
        )
    try:
        return _token(content_type, content_length, authorization, read, log, client_ip)
    except OAuthError as error:
        return _refused(error, log)
    except DatabaseError as exc:
        # The class and message only: the query's parameters never reach the log.
        logger.warning("token endpoint: database unavailable: %s: %s", type(exc).__name__, exc)
        return _refused(
            OAuthError("temporarily_unavailable", "try again shortly", 503, {"Retry-After": "5"}),
            log,
        )


def _refused(error: OAuthError, log: dict[str, Any]) -> TokenAnswer:
    token_metrics.record_token_failure(error.error)
    log["outcome"] = error.error
    return _answer(
        {"error": error.error, "error_description": error.description},
        status=error.status,
        headers=error.headers,
    )


@csrf_exempt
@token_metrics.timed
def token(request: HttpRequest) -> HttpResponse:
    """POST /oauth/token through Django (the WSGI fast path serves the same token_endpoint)."""
    meta = request.META
    log: dict[str, Any] = {}
    status, headers, body = token_endpoint(
        request.method or "",
        meta.get("CONTENT_TYPE", ""),
        content_length_of(meta.get("CONTENT_LENGTH")),
        meta.get("HTTP_AUTHORIZATION"),
        request.read,
        log,
        client_ip(request),
    )
    log_context(request, **log)
    response = HttpResponse(body, status=status, content_type=headers.pop("Content-Type"))
    for name, value in headers.items():
        response[name] = value
    return response


def jwks(request: HttpRequest) -> HttpResponse:
    """GET /.well-known/jwks.json (and /keys): the public signing keys."""
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed("GET, HEAD")
    return json_response(
        keys.jwks_document(),
        headers={"Cache-Control": f"public, max-age={settings.OAUTH['JWKS_MAX_AGE']}"},
    )


AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


def metadata() -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    issuer = settings.OAUTH["ISSUER"]
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "scopes_supported": scopes_supported(),
    }


def scopes_supported() -> list[str]:
    """The management scope and every scope of the provider's API catalog."""
    catalog = ApiScope.objects.order_by("name").values_list("name", flat=True).distinct()
    return [settings.OAUTH["MANAGEMENT_SCOPE"], *catalog]


def discovery(request: HttpRequest) -> HttpResponse:
    """GET /.well-known/oauth-authorization-server."""
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed("GET, HEAD")
    return json_response(metadata(), headers={"Cache-Control": "public, max-age=300"})
