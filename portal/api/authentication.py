"""Who may call the management API: a live management client, proven by a token we signed.

The API verifies its bearer tokens through the resource-server kit, as a customer's API would
(signature, ``iss``, the management audience, ``exp``), and then, because it runs beside the
database, asks ``oauth.introspection.live_client`` (the check introspection uses) whether the
token is still live: not revoked, its client not deleted. Every server process reads the same
database, so a revocation or a deletion through any of them holds in all of them at once, where
the kit alone would accept the token until it expires. The client must also be a management
client (in no organization): a token is never enough on the strength of its scope and audience.

The verifier is built from the OAuth settings (``oauth_settings``), not from
``RESOURCE_SERVER``, so that the leeway past ``exp`` is the one introspection uses
(``TOKEN_LEEWAY_SECONDS``) and there is one setting to change.
"""

from __future__ import annotations

import threading

from m2m_auth_kit.drf import BearerTokenAuthentication
from m2m_auth_kit.verify import Claims, InvalidToken, TokenVerifier
from oauth.introspection import live_client
from oauth.keys import SUPPORTED_ALGORITHMS, jwks_document
from oauth.settings import oauth_settings

# The same words as any other refused token: a revoked token's holder learns nothing more.
NOT_ACTIVE = "the token is not active"


class ManagementTokenVerifier(TokenVerifier):
    """A ``TokenVerifier`` that also requires a live management client."""

    def check_claims(self, claims: Claims) -> None:
        """Refuse a token (bearer or DPoP-bound) unless its management client is live."""
        client = live_client(claims.raw)
        if client is None or not client.is_management or claims.organization_id is not None:
            raise InvalidToken(NOT_ACTIVE)


_verifiers: dict[tuple, ManagementTokenVerifier] = {}
_lock = threading.Lock()


def management_verifier() -> ManagementTokenVerifier:
    """The process-wide verifier for the current OAuth settings (a settings change builds anew).

    Its JWKS is read in-process (``oauth.keys.jwks_document``): a worker must not call itself.
    """
    config = (
        oauth_settings.ISSUER,
        oauth_settings.MANAGEMENT_AUDIENCE,
        oauth_settings.TOKEN_LEEWAY_SECONDS,
    )
    verifier = _verifiers.get(config)
    if verifier is None:
        with _lock:
            verifier = _verifiers.get(config)
            if verifier is None:
                issuer, audience, leeway = config
                verifier = _verifiers[config] = ManagementTokenVerifier(
                    issuer,
                    audience=audience,
                    algorithms=SUPPORTED_ALGORITHMS,
                    leeway=leeway,
                    jwks_loader=jwks_document,
                    jwks_cache_seconds=60,
                    min_refetch_interval=1.0,
                )
    return verifier


def reset_management_verifier() -> None:
    """Forget the verifiers and their key caches (tests: each has its own signing keys)."""
    with _lock:
        _verifiers.clear()


class ManagementTokenAuthentication(BearerTokenAuthentication):
    """The kit's DRF authentication with the management verifier: 401 ``invalid_token`` for a
    revoked token, a deleted client, or a client that is not a management client."""

    def get_verifier(self) -> TokenVerifier:
        """The management verifier (see the module's docstring)."""
        return management_verifier()
