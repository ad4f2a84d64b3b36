"""``private_key_jwt`` client authentication with JWT assertions (RFC 7523 §2.2, §3; 7521 §4.2).

The client signs a short-lived JWT with a private key whose public half it registered
(``oauth.models.ClientKey``) and sends it as ``client_assertion``. We check, in order: the form
(one authentication method only), the header (an asymmetric algorithm we allow), ``iss`` =
``sub`` = the client, a registered key that verifies the signature, ``aud`` (our issuer or token
endpoint), ``exp`` (present, and at most ``ASSERTION_MAX_LIFETIME`` ahead), ``nbf``/``iat`` (not
in the future), and last a ``jti`` never seen before (``oauth.replay.remember_once``, the store
every server process shares: a second use is a replay). Every failure is ``invalid_client``
(RFC 7521 §4.2.1), except a malformed combination of parameters, which is ``invalid_request``.

Until a signature holds, every failure that depends on the client (unknown client_id, a client
without keys, no key matching the kid or alg, a signature that does not verify) gives the same
description, ``NO_KEY_VERIFIES``, so the answer does not tell whether a client_id exists.

This path takes its own queries (client and keys, the replay insert); the secret path's single
query is untouched.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jwt
from django.utils import timezone

from clients.jwk import ASSERTION_ALGORITHMS
from clients.models import ApiClient
from oauth.models import UsedAssertion
from oauth.replay import remember_once
from oauth.settings import oauth_settings
from oauth.token.lookup import AuthenticatedClient, could_be_client_id

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LENGTH = 16 * 1024
MAX_JTI_LENGTH = 255
# Clock skew tolerated on exp, nbf and iat, in seconds.
LEEWAY = 30
NO_KEY_VERIFIES = "no key registered for the client verifies the client assertion"


class AssertionRejected(Exception):
    """Why a client assertion was refused, as an RFC 6749 §5.2 error code and description."""

    def __init__(self, description: str, error: str = "invalid_client") -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def wants_assertion(params: dict[str, list[str]]) -> bool:
    """True when the request tries ``private_key_jwt`` (either assertion parameter is present)."""
    return "client_assertion_type" in params or "client_assertion" in params


def assertion_credentials(
    params: dict[str, list[str]], *, has_authorization: bool
) -> tuple[str | None, str]:
    """(client_id or None, assertion) from the form; the client_id is optional (RFC 7521 §4.2)."""
    if has_authorization or "client_secret" in params:
        raise AssertionRejected(
            "use one client authentication method: a client assertion, not also a secret",
            "invalid_request",
        )
    assertion_type = params.get("client_assertion_type", [None])[0]
    assertion = params.get("client_assertion", [None])[0]
    if not assertion_type or not assertion:
        raise AssertionRejected(
            "client_assertion_type and client_assertion must be sent together", "invalid_request"
        )
    if assertion_type != ASSERTION_TYPE:
        raise AssertionRejected(f"client_assertion_type must be {ASSERTION_TYPE}")
    return params.get("client_id", [None])[0], assertion


def accepted_audiences() -> list[str]:
    """What an assertion's ``aud`` may name: our issuer or our token endpoint (RFC 7523 §3)."""
    issuer = oauth_settings.ISSUER
    return [issuer, f"{issuer}/oauth/token"]


def _unverified(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if len(assertion) > MAX_ASSERTION_LENGTH:
        raise AssertionRejected("the client assertion is too long")
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AssertionRejected("the client assertion is not a well-formed JWT") from exc
    return header, claims


def _verify(assertion: str, jwk: dict[str, str], alg: str, client_id: str) -> dict[str, Any]:
    """The claims, once the signature and every registered claim check out."""
    public_key = jwt.PyJWK(jwk, algorithm=alg).key
    return jwt.decode(
        assertion,
        public_key,
        algorithms=[alg],
        audience=accepted_audiences(),
        issuer=client_id,
        leeway=LEEWAY,
        options={"require": ["iss", "sub", "aud", "exp", "jti"]},
    )


_CLAIM_ERRORS: list[tuple[type[Exception], str]] = [
    (jwt.ExpiredSignatureError, "the client assertion has expired"),
    (jwt.ImmatureSignatureError, "the client assertion is not valid yet (nbf or iat)"),
    (jwt.InvalidAudienceError, "the client assertion's aud must name this server's token endpoint"),
    (jwt.InvalidIssuerError, "the client assertion's iss must be the client_id"),
    (jwt.MissingRequiredClaimError, "the client assertion lacks a required claim"),
    (jwt.exceptions.InvalidJTIError, "the client assertion's jti must be a string"),
]


def _describe(exc: jwt.PyJWTError) -> str:
    for kind, message in _CLAIM_ERRORS:
        if isinstance(exc, kind):
            if isinstance(exc, jwt.MissingRequiredClaimError):
                return f"the client assertion lacks the {exc.claim} claim"
            return message
    return "the client assertion is invalid"


def authenticate_with_assertion(assertion: str, client_id: str | None) -> AuthenticatedClient:
    """The client that signed ``assertion``; raises ``AssertionRejected`` otherwise."""
    header, unverified = _unverified(assertion)
    alg = header.get("alg")
    if alg not in ASSERTION_ALGORITHMS:
        raise AssertionRejected(
            f"the client assertion's alg must be one of {', '.join(ASSERTION_ALGORITHMS)}"
        )
    issuer, subject = unverified.get("iss"), unverified.get("sub")
    if not isinstance(issuer, str) or issuer != subject or not could_be_client_id(issuer):
        raise AssertionRejected("the client assertion's iss and sub must both be the client_id")
    if client_id is not None and client_id != issuer:
        raise AssertionRejected("client_id differs from the client assertion's iss")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise AssertionRejected("the client assertion's kid must be a string")

    client = (
        ApiClient.objects.filter(pk=issuer)
        .select_related("organization")
        .prefetch_related("keys")
        .first()
    )
    candidates = [
        key
        for key in (client.keys.all() if client is not None else ())
        if key.alg == alg and (kid is None or key.kid == kid)
    ]
    if client is None or not candidates:
        raise AssertionRejected(NO_KEY_VERIFIES)

    claims: dict[str, Any] | None = None
    for key in candidates:
        try:
            claims = _verify(assertion, key.jwk, alg, issuer)
            break
        except jwt.InvalidSignatureError:
            continue  # try the next key (when no kid was given)
        except jwt.PyJWTError as exc:
            raise AssertionRejected(_describe(exc)) from exc
    if claims is None:
        raise AssertionRejected(NO_KEY_VERIFIES)

    now = int(timezone.now().timestamp())
    exp = claims["exp"]
    if exp - now > oauth_settings.ASSERTION_MAX_LIFETIME + LEEWAY:
        raise AssertionRejected(
            "the client assertion lives too long: exp may be at most "
            f"{oauth_settings.ASSERTION_MAX_LIFETIME} seconds ahead"
        )
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH or "\x00" in jti:
        raise AssertionRejected(
            f"the client assertion's jti must be 1 to {MAX_JTI_LENGTH} chars, none of them NUL"
        )
    if not remember_used(jti, issuer, datetime.fromtimestamp(exp + LEEWAY, UTC)):
        raise AssertionRejected("the client assertion was already used (jti replayed)")
    return AuthenticatedClient.of_client(client)


def remember_used(jti: str, client_id: str, expire_time: datetime) -> bool:
    """Record a jti as used until its token can no longer pass; False when it was used already
    (a replay). Client assertions and single-use external tokens (oauth.federation) share it,
    in the one replay store (oauth.replay: Redis, or the database)."""
    return remember_once(client_id, jti, expire_time)


def purge_used_assertions() -> int:
    """Forget the jtis of assertions that have expired; returns how many rows went."""
    deleted, _ = UsedAssertion.objects.filter(expire_time__lte=timezone.now()).delete()
    return deleted
