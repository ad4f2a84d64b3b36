"""m2m-auth-kit: verify OAuth 2.0 client-credentials tokens, get them, and manage clients.

The Django-free parts are importable from here; the framework guards live in
``m2m_auth_kit.django`` (extra ``django``) and ``m2m_auth_kit.drf`` (extra ``drf``).
"""

from m2m_auth_kit.client import ClientCredentials, TokenRequestError
from m2m_auth_kit.management import ManagementAPIError, ManagementClient
from m2m_auth_kit.verify import (
    Claims,
    ExpiredToken,
    InsufficientScope,
    InvalidToken,
    JWKSUnavailable,
    TokenError,
    TokenVerifier,
)

__version__ = "0.1.0"

__all__ = [
    "Claims",
    "ClientCredentials",
    "ExpiredToken",
    "InsufficientScope",
    "InvalidToken",
    "JWKSUnavailable",
    "ManagementAPIError",
    "ManagementClient",
    "TokenError",
    "TokenRequestError",
    "TokenVerifier",
]
