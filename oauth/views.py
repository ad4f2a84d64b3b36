"""The OAuth endpoints as Django views: token (RFC 6749 §4.4), JWKS, discovery (RFC 8414),
introspection (RFC 7662) and revocation (RFC 7009).

The token view only adapts ``oauth.token.endpoint.token_endpoint`` (the server's fast path,
``portal.serving.fastpath``, adapts the same function without the Django request cycle).
Introspection and revocation authenticate the caller exactly as the token endpoint does. A
management client may introspect and revoke any token; any other client only its own: another
client's token looks inactive and its revocation is a silent no-op, so a client learns nothing
about tokens that are not its own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from clients.jwk import ASSERTION_ALGORITHMS
from clients.models import ApiScope
from clients.services import Actor, secret_report_leak
from oauth import keys, secret_scanning
from oauth import metrics as token_metrics
from oauth.dpop import DPOP_ALGORITHMS
from oauth.federation import JWT_BEARER_GRANT
from oauth.introspection import (
    introspection_answer,
    live_client,
    may_see,
    token_revoke,
    verify_own_token,
)
from oauth.settings import oauth_settings
from oauth.token.authenticate import authenticate_client
from oauth.token.endpoint import token_endpoint
from oauth.token.lookup import AuthenticatedClient
from oauth.token.request import NO_STORE, OAuthError, content_length_of, read_form
from portal.lib.encoding import compact_json
from portal.lib.logs import log_context
from portal.lib.net import client_ip


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


def request_form(request: HttpRequest) -> dict[str, list[str]]:
    """``read_form`` for a Django request (the introspection and revocation endpoints)."""
    meta = request.META
    return read_form(
        meta.get("CONTENT_TYPE", ""), content_length_of(meta.get("CONTENT_LENGTH")), request.read
    )


@csrf_exempt
@token_metrics.timed
def token(request: HttpRequest) -> HttpResponse:
    """POST /oauth/token through Django (the WSGI fast path serves the same token_endpoint)."""
    meta = request.META
    log: dict[str, Any] = {}
    proof = meta.get("HTTP_DPOP")
    status, headers, body = token_endpoint(
        request.method or "",
        meta.get("CONTENT_TYPE", ""),
        content_length_of(meta.get("CONTENT_LENGTH")),
        meta.get("HTTP_AUTHORIZATION"),
        request.read,
        log,
        client_ip(request),
        proof=proof,
        target_uri=request.build_absolute_uri(request.path) if proof is not None else None,
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
        headers={"Cache-Control": f"public, max-age={oauth_settings.JWKS_MAX_AGE}"},
    )


AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


def metadata() -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    issuer = oauth_settings.ISSUER
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials", JWT_BEARER_GRANT],
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
        "dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS),
    }


def scopes_supported() -> list[str]:
    """The management scope and every scope of the provider's API catalog."""
    catalog = ApiScope.objects.order_by("name").values_list("name", flat=True).distinct()
    return [oauth_settings.MANAGEMENT_SCOPE, *catalog]


def discovery(request: HttpRequest) -> HttpResponse:
    """GET /.well-known/oauth-authorization-server."""
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed("GET, HEAD")
    return json_response(metadata(), headers={"Cache-Control": "public, max-age=300"})


# --- Introspection and revocation ----------------------------------------------------------------


def _oauth_endpoint(view: Callable[[HttpRequest], HttpResponse]) -> Callable:
    """POST only; RFC 6749 §5.2 errors; a database outage is a 503, not a 500."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return method_not_allowed("POST")
        try:
            return view(request)
        except OAuthError as error:
            return oauth_error_response(error)
        except DatabaseError:
            return json_response(
                {"error": "temporarily_unavailable", "error_description": "try again shortly"},
                status=503,
                headers={"Retry-After": "5", **NO_STORE},
            )

    return wrapper


def _token_param(params: dict[str, list[str]]) -> str:
    token = params.get("token", [None])[0]
    if not token:
        raise OAuthError("invalid_request", "the token parameter is required")
    # token_type_hint is optional and only a hint (RFC 7662 §2.1, RFC 7009 §2.1): we issue
    # access tokens only and always look there, whatever the hint says.
    return token


def _caller_and_token(request: HttpRequest) -> tuple[AuthenticatedClient, dict | None]:
    """The authenticated caller, and the claims of the ``token`` it asks about (None: not ours)."""
    params = request_form(request)
    token = _token_param(params)
    log: dict[str, str] = {}
    try:
        caller, _method = authenticate_client(
            request.META.get("HTTP_AUTHORIZATION"), params, log, client_ip(request)
        )
    finally:
        log_context(request, **log)
    return caller, verify_own_token(token)


@_oauth_endpoint
def introspect(request: HttpRequest) -> HttpResponse:
    """POST /oauth/introspect: is this token active, and what does it say?"""
    caller, claims = _caller_and_token(request)
    if (
        claims is None
        or not may_see(caller.client_id, caller.organization_id, claims)
        or live_client(claims) is None
    ):
        return json_response({"active": False}, headers=NO_STORE)
    return json_response(introspection_answer(claims), headers=NO_STORE)


@_oauth_endpoint
def revoke(request: HttpRequest) -> HttpResponse:
    """POST /oauth/revoke: 200 for every well-formed, authenticated request (RFC 7009 §2.2)."""
    caller, claims = _caller_and_token(request)
    # Unknown, expired or foreign tokens: nothing to do, and nothing to tell (RFC 7009 §2.2).
    if claims is not None and may_see(caller.client_id, caller.organization_id, claims):
        token_revoke(
            actor=Actor.for_client(caller.client_id, ip=client_ip(request)),
            jti=claims["jti"],
            client_id=claims["client_id"],
            organization_id=claims.get("oid"),
            expire_time=datetime.fromtimestamp(claims["exp"], UTC),
        )
    return HttpResponse(status=200, headers=NO_STORE)


# Alerts are small (a few matches); a larger body is refused before it is read.
MAX_ALERT_BYTES = 1024 * 1024


@csrf_exempt
def github_secret_scanning(request: HttpRequest) -> HttpResponse:
    """POST /oauth/secret-scanning/github: GitHub's secret scanning partner alerts
    (``oauth.secret_scanning``). A signed alert revokes each of our secrets it names (or only
    records it, per the organization's ``on_leak``) and answers GitHub's labels; an unsigned or
    wrongly signed one is 401 and changes nothing; the same alert again changes nothing more."""
    if request.method != "POST":
        return method_not_allowed("POST")
    length = content_length_of(request.META.get("CONTENT_LENGTH"))
    if length is not None and length > MAX_ALERT_BYTES:
        return json_response({"error": "the alert is too large"}, status=413)
    body = request.body
    if len(body) > MAX_ALERT_BYTES:  # sent without a Content-Length (chunked)
        return json_response({"error": "the alert is too large"}, status=413)
    try:
        secret_scanning.verify_signature(
            body,
            request.headers.get("Github-Public-Key-Identifier"),
            request.headers.get("Github-Public-Key-Signature"),
        )
    except secret_scanning.SignatureRejected as exc:
        return json_response({"error": str(exc)}, status=401)
    try:
        matches = secret_scanning.parse_matches(body)
    except secret_scanning.MalformedAlert as exc:
        return json_response({"error": str(exc)}, status=400)
    actor = Actor(
        type="system",
        id="github-secret-scanning",
        display="GitHub secret scanning",
        ip=client_ip(request),
    )
    answer = []
    for match in matches:
        result = secret_report_leak(
            actor=actor, token=match.token, url=match.url, source=match.source or "github"
        )
        answer.append(secret_scanning.feedback(match, result.label))
    response = HttpResponse(compact_json(answer), status=200, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response
