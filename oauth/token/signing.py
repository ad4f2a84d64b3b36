"""Signing an access token: RFC 9068's claims, the guide's ``scopes`` and ``oid``, the client's
custom claims, and the current signing key (parsed once per process by ``oauth.keys``)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from oauth import keys
from oauth.settings import oauth_settings
from oauth.token.lookup import AuthenticatedClient


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scopes: list[str]
    jti: str
    claims: dict[str, Any]


def _signing_key(current_kid: str | None) -> keys.LoadedKey:
    if current_kid is None:
        return keys.current_loaded_key()
    return keys.loaded_key_by_kid(current_kid)


def new_jti() -> str:
    return f"tkn_{secrets.randbits(80)}"


def issue_token(
    client: AuthenticatedClient,
    *,
    scopes: list[str] | None = None,
    audience: list[str] | None = None,
    jkt: str | None = None,
) -> IssuedToken:
    """Sign an access token (RFC 9068 shape, plus the guide's ``scopes`` and ``oid``); with
    ``jkt``, bound to that DPoP key (RFC 9449 §6.1: ``cnf.jkt``)."""
    scopes = client.scopes if scopes is None else scopes
    audience = client.audience if audience is None else audience
    issued_at = int(time.time())
    jti = new_jti()
    claims: dict[str, Any] = {item["key"]: item["value"] for item in client.custom_claims}
    claims.update(
        {
            "iss": oauth_settings.ISSUER,
            "sub": client.client_id,
            "client_id": client.client_id,
        }
    )
    if client.organization_id:
        claims["oid"] = client.organization_id
    if client.federation is not None:
        claims["act"] = client.federation.act
    if audience:
        claims["aud"] = audience[0] if len(audience) == 1 else list(audience)
    claims["scopes"] = list(scopes)
    if scopes:
        claims["scope"] = " ".join(scopes)
    claims.update(
        {"iat": issued_at, "nbf": issued_at, "exp": issued_at + client.expiry, "jti": jti}
    )
    if jkt is not None:
        claims["cnf"] = {"jkt": jkt}
    access_token = _signing_key(client.current_kid).encode(claims)
    return IssuedToken(
        access_token=access_token,
        expires_in=client.expiry,
        scopes=list(scopes),
        jti=jti,
        claims=claims,
    )
