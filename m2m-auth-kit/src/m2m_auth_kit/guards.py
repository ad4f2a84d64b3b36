"""Django and DRF guards in one import path (needs both extras: ``django`` and ``drf``).

Kept for the code written before the two were split: ``m2m_auth_kit.django`` (decorator, mixin,
the process-wide verifier) needs only Django, ``m2m_auth_kit.drf`` (authentication, permission)
adds Django REST framework.
"""

from m2m_auth_kit.django import (
    REALM,
    ScopesRequiredMixin,
    bearer_challenge,
    get_verifier,
    insufficient_scope_challenge,
    require_scopes,
    reset_verifier,
)
from m2m_auth_kit.drf import (
    BearerTokenAuthentication,
    HasScopes,
    InsufficientScopeError,
    InvalidRequestError,
    TokenServiceUnavailable,
    TokenUser,
)

__all__ = [
    "REALM",
    "BearerTokenAuthentication",
    "HasScopes",
    "InsufficientScopeError",
    "InvalidRequestError",
    "ScopesRequiredMixin",
    "TokenServiceUnavailable",
    "TokenUser",
    "bearer_challenge",
    "get_verifier",
    "insufficient_scope_challenge",
    "require_scopes",
    "reset_verifier",
]
