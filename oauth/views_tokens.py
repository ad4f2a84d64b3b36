"""Token introspection (RFC 7662) and revocation (RFC 7009).

The caller authenticates as a client exactly as at the token endpoint (``authenticate_client``:
Basic, post, or ``private_key_jwt``). A management client may introspect and revoke any token;
any other client only its own. Another client's token looks inactive and its revocation is a
silent no-op, so a client learns nothing about tokens that are not its own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from clients.services import Actor
from oauth.introspection import (
    introspection_answer,
    is_active,
    may_see,
    token_revoke,
    verify_own_token,
)
from oauth.tokens import AuthenticatedClient
from oauth.views import (
    NO_STORE,
    OAuthError,
    authenticate_client,
    json_response,
    method_not_allowed,
    oauth_error_response,
    request_form,
)
from portal.lib.logs import log_context
from portal.lib.net import client_ip


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
        or not is_active(claims)
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
