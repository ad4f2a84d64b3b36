"""Reading our own access tokens back: for introspection (RFC 7662) and revocation (RFC 7009).

A token is *active* when its signature verifies with one of our published signing keys, its
``iss`` is ours, it has not expired (``TOKEN_LEEWAY_SECONDS`` of clock skew allowed), its ``jti``
is not in ``RevokedToken``, and its client still exists (``live_client``, which the management
API uses too, so a revocation or a deletion stops a token in both at once). Tokens do not record
which secret (or key) obtained them, so deleting a secret does not deactivate the tokens already
issued with it: revoke those tokens (or delete the client).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jwt
from django.db import IntegrityError, transaction
from django.db.models import Exists, Q
from django.utils import timezone

from clients.models import ApiClient
from clients.services.audit import Actor, audit_token
from oauth.keys import SUPPORTED_ALGORITHMS
from oauth.models import RevokedToken, SigningKey
from oauth.settings import oauth_settings

MAX_TOKEN_LENGTH = 16 * 1024

# Public halves of our signing keys, parsed once per process (a kid never changes its key).
_public_keys: dict[str, Any] = {}

# The claims an introspection answer repeats (RFC 7662 §2.2), in this order.
ANSWER_CLAIMS = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti", "oid")


def _published_key(kid: str, alg: str) -> Any | None:
    now = timezone.now()
    row = (
        SigningKey.objects.filter(kid=kid, algorithm=alg)
        .filter(Q(unpublish_time__isnull=True) | Q(unpublish_time__gt=now))
        .only("kid", "public_jwk")
        .first()
    )
    if row is None:
        return None
    key = _public_keys.get(kid)
    if key is None:
        key = _public_keys[kid] = jwt.PyJWK(row.public_jwk, algorithm=alg).key
    return key


def verify_own_token(token: str) -> dict[str, Any] | None:
    """The claims of an unexpired access token we signed, or None for anything else."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return None
    kid, alg = header.get("kid"), header.get("alg")
    if not isinstance(kid, str) or "\x00" in kid or alg not in SUPPORTED_ALGORITHMS:
        return None  # (no kid of ours holds a NUL, which PostgreSQL cannot compare)
    key = _published_key(kid, alg)
    if key is None:
        return None
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            issuer=oauth_settings.ISSUER,
            leeway=oauth_settings.TOKEN_LEEWAY_SECONDS,
            options={
                "verify_aud": False,
                "require": ["iss", "sub", "exp", "iat", "jti", "client_id"],
            },
        )
    except jwt.PyJWTError:
        return None
    if not isinstance(claims.get("jti"), str) or not isinstance(claims.get("client_id"), str):
        return None
    return claims


def live_client(claims: Mapping[str, Any]) -> ApiClient | None:
    """The client that obtained a verified token, or None once the token is revoked or the
    client deleted.

    The one check behind introspection and the management API alike. It reads the database that
    every server process shares, in one query, so a revocation or a deletion made through any
    process holds in all of them at once, with no cache to wait for.
    """
    jti, client_id = claims.get("jti"), claims.get("client_id")
    if not isinstance(jti, str) or not isinstance(client_id, str):
        return None
    return (
        ApiClient.objects.filter(pk=client_id)
        .filter(~Exists(RevokedToken.objects.filter(pk=jti)))
        .first()
    )


def may_see(caller_client_id: str, caller_organization_id: str | None, claims: dict) -> bool:
    """A management client may see every token; any other client only its own."""
    return caller_organization_id is None or claims["client_id"] == caller_client_id


def introspection_answer(claims: dict[str, Any]) -> dict[str, Any]:
    """RFC 7662 §2.2 for an active token."""
    answer: dict[str, Any] = {"active": True}
    for name in ANSWER_CLAIMS:
        if name in claims:
            answer[name] = claims[name]
    # RFC 9449 §6.2: a DPoP-bound token says so, with its key's thumbprint.
    cnf = claims.get("cnf")
    if isinstance(cnf, dict) and isinstance(cnf.get("jkt"), str):
        answer["token_type"] = "DPoP"
        answer["cnf"] = {"jkt": cnf["jkt"]}
    else:
        answer["token_type"] = "Bearer"
    return answer


def purge_revoked_tokens() -> int:
    """Forget revoked tokens that have expired anyway; returns how many rows went."""
    deleted, _ = RevokedToken.objects.filter(expire_time__lte=timezone.now()).delete()
    return deleted


@transaction.atomic
def token_revoke(
    *, actor: Actor, jti: str, client_id: str, organization_id: str | None, expire_time: datetime
) -> bool:
    """Remember a token's ``jti`` as revoked until the token expires. False if it already was.

    Rows of tokens that have expired anyway are purged here, so the table stays small.
    """
    now = timezone.now()
    RevokedToken.objects.filter(expire_time__lte=now).delete()
    if expire_time <= now or RevokedToken.objects.filter(pk=jti).exists():
        return False
    try:
        with transaction.atomic():
            RevokedToken.objects.create(jti=jti, client_id=client_id, expire_time=expire_time)
    except IntegrityError:
        return False  # revoked concurrently: the first request wrote the audit event
    audit_token(
        actor,
        "token.revoke",
        jti,
        client_id=client_id,
        organization_id=organization_id,
        details={"expire_time": expire_time.isoformat()},
    )
    return True
