"""Django REST framework guards for bearer-token APIs (extra ``drf``).

    class OrderList(APIView):
        authentication_classes = [BearerTokenAuthentication]
        permission_classes = [HasScopes]
        required_scopes = {"GET": ["orders:read"], "POST": ["orders:write"]}

Configured by the same ``RESOURCE_SERVER`` setting as ``m2m_auth_kit.django``, whose refusal
logic it shares; see that module for the answers (RFC 6750 §3) and for the contract with a
project's DRF exception handler.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rest_framework import exceptions as drf_exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from m2m_auth_kit.django import (
    _dpop_required,
    _missing,
    _Refusal,
    _scheme_of,
    _scopes_for,
    _verify,
    bearer_challenge,
    challenges,
    get_verifier,
    insufficient_scope_challenge,
)
from m2m_auth_kit.verify import Claims, TokenVerifier

__all__ = [
    "BearerTokenAuthentication",
    "HasScopes",
    "InsufficientScopeError",
    "InvalidRequestError",
    "TokenServiceUnavailable",
    "TokenUser",
]


class TokenUser:
    """The ``request.user`` of a request authenticated by a client-credentials token.

    A machine client, not a database user: ``client_id``, ``organization_id``
    and ``scopes`` come from the token, and it holds no Django permissions.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, claims: Claims) -> None:
        """Wrap verified ``claims``."""
        self.claims = claims
        self.client_id = claims.client_id
        self.organization_id = claims.organization_id
        self.scopes = claims.scopes
        self.username = claims.client_id or ""

    def get_username(self) -> str:
        """The client id, for code that expects a Django user."""
        return self.username

    def has_perm(self, perm: str, obj: object = None) -> bool:
        """Always ``False``: machine clients get access through scopes, not permissions."""
        return False

    def __str__(self) -> str:
        return f"client {self.client_id}"


class InsufficientScopeError(drf_exceptions.PermissionDenied):
    """403: the token lacks scopes (RFC 6750 ``insufficient_scope``).

    ``scopes`` are the scopes the operation requires, ``missing`` those the
    token lacks; ``auth_header`` is the ``WWW-Authenticate`` value to send.
    """

    default_detail = "The token lacks a required scope."
    default_code = "insufficient_scope"

    def __init__(
        self, scopes: Sequence[str], missing: Sequence[str] = (), scheme: str = "Bearer"
    ) -> None:
        """Refuse for want of ``scopes`` (``scheme``: the token's, Bearer or DPoP)."""
        self.scopes = tuple(scopes)
        self.missing = tuple(missing)
        self.auth_header = insufficient_scope_challenge(self.scopes, scheme)
        super().__init__()


class InvalidRequestError(drf_exceptions.APIException):
    """400: the bearer token was sent in a way we refuse (RFC 6750 ``invalid_request``)."""

    status_code = 400
    default_detail = "Malformed bearer token request."
    default_code = "invalid_request"

    def __init__(self, description: str, challenge: str | None = None) -> None:
        """Refuse with ``description`` (also sent in the challenge, unless ``challenge``)."""
        self.auth_header = challenge or bearer_challenge("invalid_request", description)
        super().__init__(description)


class TokenServiceUnavailable(drf_exceptions.APIException):
    """503: the token issuer's keys cannot be fetched; ``wait`` feeds ``Retry-After``."""

    status_code = 503
    default_detail = "Token verification is temporarily unavailable."
    default_code = "temporarily_unavailable"

    def __init__(self, description: str, wait: int) -> None:
        """Refuse for now, for about ``wait`` seconds."""
        self.wait = wait
        super().__init__(description)


def _set_view_header(request: Any, name: str, value: str) -> None:
    # DRF applies view.headers to the final response after the exception
    # handler ran, so the header survives a handler that drops it.
    view = (getattr(request, "parser_context", None) or {}).get("view")
    headers = getattr(view, "headers", None)
    if isinstance(headers, dict):
        headers[name] = value


class BearerTokenAuthentication(BaseAuthentication):
    """DRF authentication by ``Authorization: Bearer <JWT>``, or ``Authorization: DPoP <JWT>``
    with its ``DPoP`` proof for a DPoP-bound token (RFC 9449 §7).

    ``authenticate`` returns ``(TokenUser, Claims)``, so views read
    ``request.auth.scopes`` or ``request.user.client_id``. A request without a
    token is left to the next authenticator (or to the permission classes,
    which answer 401 with the ``Bearer`` and ``DPoP`` challenges). A view with
    ``dpop_required = True`` (or ``RESOURCE_SERVER["DPOP_REQUIRED"]``) accepts
    DPoP-bound tokens only.
    """

    def get_verifier(self) -> TokenVerifier:
        """The verifier of the bearer tokens: the process-wide one of ``RESOURCE_SERVER``.

        Override it to verify with another ``TokenVerifier``, for example a subclass whose
        ``verify`` also checks a revocation list; its ``TokenError`` is answered with 401
        ``invalid_token`` like any other.
        """
        return get_verifier()

    def authenticate(self, request: Any) -> tuple[TokenUser, Claims] | None:
        """Verify the bearer token, if any; raise on a bad one."""
        try:
            claims = _verify(request, self.get_verifier, self._view_requires_dpop(request))
        except _Refusal as refusal:
            if refusal.status == 503:
                _set_view_header(request, "Retry-After", str(refusal.retry_after))
                raise TokenServiceUnavailable(
                    refusal.description, refusal.retry_after or 1
                ) from None
            if refusal.status == 400:
                exc = InvalidRequestError(refusal.description, refusal.challenge)
                _set_view_header(request, "WWW-Authenticate", exc.auth_header)
                raise exc from None
            challenge = refusal.challenge or bearer_challenge()
            # DRF asks authenticate_header() for the 401 challenge; remember ours.
            request._bearer_challenge = challenge
            _set_view_header(request, "WWW-Authenticate", challenge)
            raise drf_exceptions.AuthenticationFailed(refusal.description) from None
        if claims is None:
            return None
        request._request.token_claims = claims
        return TokenUser(claims), claims

    @staticmethod
    def _view_requires_dpop(request: Any) -> bool | None:
        view = (getattr(request, "parser_context", None) or {}).get("view")
        required = getattr(view, "dpop_required", None)
        return required if isinstance(required, bool) else None

    def authenticate_header(self, request: Any) -> str:
        """The 401 challenge: with the error when a token was refused, bare otherwise."""
        challenge = getattr(request, "_bearer_challenge", None) or challenges(
            dpop_required=_dpop_required(self.get_verifier(), self._view_requires_dpop(request))
        )
        _set_view_header(request, "WWW-Authenticate", challenge)
        return challenge


class HasScopes(BasePermission):
    """DRF permission: the bearer token must carry the view's ``required_scopes``.

    ``required_scopes`` is a sequence, or a dict from HTTP method to scopes
    (``"*"`` for the rest; methods not named are refused). Without a verified
    token the answer is 401; with too few scopes, ``InsufficientScopeError``.
    """

    def has_permission(self, request: Any, view: Any) -> bool:
        """Check the token's scopes against the view's requirement."""
        claims = request.auth
        if not isinstance(claims, Claims):
            return False  # DRF turns this into 401 NotAuthenticated
        scopes = _scopes_for(getattr(view, "required_scopes", None), request.method, view)
        if scopes is None:
            raise drf_exceptions.PermissionDenied("This method is not allowed for this token.")
        missing = _missing(claims, scopes)
        if missing:
            exc = InsufficientScopeError(scopes, missing, _scheme_of(claims))
            _set_view_header(request, "WWW-Authenticate", exc.auth_header)
            raise exc
        return True
