"""Workload identity federation (issue 18): an external workload's OIDC token (GitHub Actions,
GitLab CI, Kubernetes, any issuer) checked against a client's trust policies, in place of a secret.

Two request forms reach it, both with the external token and our ``client_id`` (which selects the
policies): the RFC 7523 §2.1 JWT bearer grant (``oauth.token.federated``, refusals are
``invalid_grant``), and RFC 7523 §2.2 client authentication in the client-credentials grant, a
``client_assertion`` whose ``iss`` is not the client (``oauth.token.authenticate``, refusals are
``invalid_client``). ``check_external_token`` is the one check behind both, and behind the
portal's "test a token" box (``explain``).

The token is checked fully: an allowed algorithm (RS256, ES256, PS256: never ``none`` or HMAC),
the signature by a key of the issuer (a policy's static JWKS, or the keys its discovery document
names, fetched through the one safe fetcher, ``portal.lib.outbound``, cached for the JWKS
response's max-age and fetched again on an unknown ``kid`` at most once a minute), ``iss``,
``aud``, ``exp``, ``nbf``, ``iat`` within the policy's ``max_token_age``, the subject and every
claim condition. Descriptions say which check failed and never echo the token or its claims.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from django.utils import timezone

from clients.jwk import JWKError, parse_public_jwk
from clients.models import ApiClient, TrustPolicy
from clients.trust import claim_text, claim_value, pattern_matches
from oauth import assertions
from oauth.settings import oauth_settings
from oauth.token.lookup import AuthenticatedClient, Federation, could_be_client_id
from portal.lib import outbound

logger = logging.getLogger("oauth.federation")

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ALGORITHMS = ("RS256", "ES256", "PS256")
KEY_TYPES = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC"}
MAX_TOKEN_LENGTH = 16 * 1024
# Clock skew tolerated on exp, nbf and iat, in seconds.
LEEWAY = 30
# Keys of an issuer: cached for the JWKS response's max-age, within these bounds; an unknown kid
# fetches them again at most once per OAUTH_FEDERATION_REFETCH_SECONDS.
DEFAULT_KEYS_MAX_AGE = 300
MIN_KEYS_MAX_AGE = 60
MAX_KEYS_MAX_AGE = 86400
RETRY_AFTER = 30
# The kit's answer to "no key": the same words whatever the reason, once the token parsed.
NO_KEY = "no key of the issuer verifies the external token's signature"
MAX_AGE_RE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


class FederationRejected(Exception):
    """The external token was refused; ``description`` says which check failed."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class IssuerUnavailable(Exception):
    """The issuer's keys could not be fetched and none are cached: try again later (503)."""

    retry_after = RETRY_AFTER


@dataclass
class _IssuerKeys:
    keys: list[dict[str, Any]]
    expires: float
    fetched: float


_cache: dict[str, _IssuerKeys] = {}
_cache_lock = threading.Lock()


def forget_issuer_keys() -> None:
    """Empty this process's cache of issuers' keys (tests)."""
    with _cache_lock:
        _cache.clear()


def _max_age(headers: dict[str, str]) -> int:
    cache_control = headers.get("cache-control", "")
    if "no-store" in cache_control.lower() or "no-cache" in cache_control.lower():
        return MIN_KEYS_MAX_AGE
    match = MAX_AGE_RE.search(cache_control)
    if match is None:
        return DEFAULT_KEYS_MAX_AGE
    return max(MIN_KEYS_MAX_AGE, min(MAX_KEYS_MAX_AGE, int(match.group(1))))


def _discover_keys(issuer: str) -> tuple[list[dict[str, Any]], int]:
    """The issuer's public keys (OpenID discovery, else RFC 8414) and how long to keep them."""
    base = issuer.rstrip("/")
    document: dict[str, Any] | None = None
    for suffix in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        try:
            document, _headers = outbound.fetch_json(base + suffix)
            break
        except outbound.OutboundRefused as exc:
            last = exc
    if document is None:
        raise last
    if document.get("issuer") != issuer:
        raise outbound.OutboundRefused("the discovery document names another issuer")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise outbound.OutboundRefused("the discovery document has no jwks_uri")
    jwks, headers = outbound.fetch_json(jwks_uri)
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise outbound.OutboundRefused("the issuer's JWKS has no keys list")
    return [key for key in keys if isinstance(key, dict)], _max_age(headers)


def issuer_keys(issuer: str, kid: str | None) -> list[dict[str, Any]]:
    """The issuer's keys, from this process's cache when fresh; fetched again when expired, or
    when ``kid`` is unknown and the last fetch is over a minute old. A failed fetch keeps the
    keys cached before; with none, ``IssuerUnavailable``."""
    now = time.monotonic()
    entry = _cache.get(issuer)
    stale = entry is None or entry.expires <= now
    unknown = entry is not None and kid is not None and all(k.get("kid") != kid for k in entry.keys)
    if not stale and not (
        unknown and now - entry.fetched >= oauth_settings.FEDERATION_REFETCH_SECONDS
    ):
        return entry.keys
    try:
        keys, max_age = _discover_keys(issuer)
    except outbound.OutboundRefused as exc:
        logger.warning("federation: cannot fetch the keys of %s: %s", issuer, exc)
        if entry is None:
            raise IssuerUnavailable(str(exc)) from exc
        with _cache_lock:  # do not ask again for a minute
            entry.fetched = now
        return entry.keys
    with _cache_lock:
        _cache[issuer] = _IssuerKeys(keys, now + max_age, now)
    return keys


def _public_key(jwk: dict[str, Any], alg: str) -> Any | None:
    """The key to verify ``alg`` with, or None when ``jwk`` cannot serve it."""
    if jwk.get("kty") != KEY_TYPES[alg] or jwk.get("alg", alg) != alg:
        return None
    if jwk.get("use", "sig") != "sig":
        return None
    try:
        return parse_public_jwk({**jwk, "alg": alg}).public_key
    except JWKError:
        return None


@dataclass(frozen=True)
class Verdict:
    """A token that passed: the policy that admitted it and the token's verified claims."""

    policy: TrustPolicy
    claims: dict[str, Any]


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise FederationRejected("the external token is empty or too long")
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise FederationRejected("the external token is not a well-formed JWT") from exc
    if header.get("alg") not in ALGORITHMS:
        raise FederationRejected(f"the external token's alg must be one of {', '.join(ALGORITHMS)}")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise FederationRejected("the external token's kid must be a string")
    return header, claims


def is_external(assertion: str, client_id: str | None) -> bool:
    """Whether a client assertion is an external workload token rather than ``private_key_jwt``:
    a ``client_id`` is given and the assertion's ``iss`` is neither that client nor its own
    ``sub`` (a workload token names its issuer and the workload apart). An assertion with
    ``iss`` = ``sub`` stays private_key_jwt's, which explains a mismatch with the form's
    client_id itself."""
    if client_id is None or not could_be_client_id(client_id):
        return False
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        return False
    issuer = claims.get("iss")
    return isinstance(issuer, str) and issuer not in (client_id, claims.get("sub"))


def policy_checks(
    policy: TrustPolicy, claims: dict[str, Any], now: int
) -> list[tuple[str, str | None]]:
    """Each claim check of ``policy`` on (signature-verified) claims, in order: (what is
    checked, None when it passes or the refusal's description)."""
    checks: list[tuple[str, str | None]] = []
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    checks.append(
        (
            "aud",
            None
            if policy.audience in audiences
            else "the external token's aud does not name the policy's audience",
        )
    )
    issued = claims.get("iat")
    if not isinstance(issued, int | float) or isinstance(issued, bool):
        age = "the external token has no iat claim"
    elif issued > now + LEEWAY:
        age = "the external token's iat is in the future"
    elif now - issued > policy.max_token_age + LEEWAY:
        limit = policy.max_token_age
        age = f"the external token is older than the policy's max_token_age ({limit} s)"
    else:
        age = None
    checks.append(("iat within max_token_age", age))
    if policy.subject:
        subject = claims.get("sub")
        matches = isinstance(subject, str) and pattern_matches(policy.subject, subject)
        checks.append(
            (
                "sub",
                None if matches else "the external token's sub does not match the policy's subject",
            )
        )
    for condition in policy.claim_conditions:
        name = condition["claim"]
        value = claim_text(claim_value(claims, name))
        matches = value is not None and pattern_matches(condition["value"], value)
        checks.append(
            (
                name,
                None if matches else f"the external token's {name} claim does not match the policy",
            )
        )
    return checks


def _policy_failure(policy: TrustPolicy, claims: dict[str, Any], now: int) -> str | None:
    """The first check of ``policy`` that the claims fail, or None."""
    return next((failure for _what, failure in policy_checks(policy, claims, now) if failure), None)


def _verified_claims(token: str, header: dict[str, Any], keys: Iterable[dict[str, Any]]) -> dict:
    alg = header["alg"]
    kid = header.get("kid")
    candidates = [k for k in keys if kid is None or k.get("kid") == kid]
    for jwk in candidates:
        public_key = _public_key(jwk, alg)
        if public_key is None:
            continue
        try:
            return jwt.decode(
                token,
                public_key,
                algorithms=[alg],
                leeway=LEEWAY,
                options={"verify_aud": False, "verify_iss": False, "require": ["exp", "iat"]},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError as exc:
            raise FederationRejected("the external token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise FederationRejected("the external token is not valid yet (nbf or iat)") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise FederationRejected(f"the external token lacks the {exc.claim} claim") from exc
        except jwt.PyJWTError as exc:
            raise FederationRejected("the external token's claims are malformed") from exc
    raise FederationRejected(NO_KEY)


def check_external_token(token: str, client: ApiClient) -> Verdict:
    """Check ``token`` against ``client``'s trust policies; the first policy that admits it wins.

    Raises ``FederationRejected`` (which check failed) or ``IssuerUnavailable`` (503)."""
    header, unverified = _unverified(token)
    kid = header.get("kid")
    issuer = unverified.get("iss")
    policies = [p for p in client.trust_policies.all() if p.issuer == issuer]
    if not isinstance(issuer, str) or not policies:
        raise FederationRejected("no trust policy of the client accepts the external token's iss")
    now = int(timezone.now().timestamp())
    failures: list[tuple[str, str]] = []
    # A policy with a static JWKS is checked with its own keys; the others share the issuer's
    # discovered keys, fetched (or read from the cache) once.
    discovered: dict[str, Any] | FederationRejected | None = None
    for policy in policies:
        try:
            if policy.jwks is not None:
                claims = _verified_claims(token, header, policy.jwks["keys"])
            else:
                if discovered is None:
                    try:
                        discovered = _verified_claims(token, header, issuer_keys(issuer, kid))
                    except FederationRejected as exc:
                        discovered = exc
                if isinstance(discovered, FederationRejected):
                    raise discovered
                claims = discovered
        except FederationRejected as exc:
            failures.append((policy.name, exc.description))
            continue
        failure = _policy_failure(policy, claims, now)
        if failure is None:
            return Verdict(policy=policy, claims=claims)
        failures.append((policy.name, failure))
    if len(failures) == 1:
        raise FederationRejected(failures[0][1])
    listed = "; ".join(f"{name}: {description}" for name, description in failures)
    raise FederationRejected(f"no trust policy admits the external token ({listed})")


def remember_once(claims: dict[str, Any], client_id: str) -> None:
    """With OAUTH_FEDERATION_SINGLE_USE, an external token's (iss, jti) may be used once: it is
    remembered until the token expires. Off (the default), CI systems may reuse a token until
    it expires, as they do."""
    if not oauth_settings.FEDERATION_SINGLE_USE:
        return
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise FederationRejected("the external token has no jti, and single use is required")
    # Every issuer's jtis in one column: a digest of the pair keeps them apart and short.
    key = hashlib.sha256(f"{claims['iss']}\x00{jti}".encode()).hexdigest()
    expire_time = datetime.fromtimestamp(int(claims["exp"]) + LEEWAY, UTC)
    if not assertions.remember_used(f"ext:{key}", client_id, expire_time):
        raise FederationRejected("the external token was already used (single use)")


def federated_client(token: str, client_id: str | None) -> AuthenticatedClient:
    """The client ``client_id`` once ``token`` passes one of its trust policies, with the
    external ``iss`` and ``sub`` as its ``act`` (RFC 8693 §4.1)."""
    if client_id is None or not could_be_client_id(client_id):
        raise FederationRejected("client_id is required to select the trust policies")
    client = (
        ApiClient.objects.filter(pk=client_id, organization__isnull=False)
        .select_related("organization")  # its quota caps (AuthenticatedClient.of_client)
        .prefetch_related("trust_policies")
        .first()
    )
    if client is None:
        # The same words as a client without a matching policy: no client_id is confirmed.
        _unverified(token)
        raise FederationRejected("no trust policy of the client accepts the external token's iss")
    verdict = check_external_token(token, client)
    remember_once(verdict.claims, client.id)
    subject = verdict.claims.get("sub")
    federation = Federation(
        policy_id=verdict.policy.id,
        policy_name=verdict.policy.name,
        issuer=str(verdict.claims["iss"]),
        subject=subject if isinstance(subject, str) else None,
    )
    return AuthenticatedClient.of_client(client, federation)


@dataclass(frozen=True)
class PolicyReport:
    """One policy's checks of a pasted token, for the portal's "test a token" box."""

    policy: TrustPolicy
    checks: list[tuple[str, str | None]]

    @property
    def admitted(self) -> bool:
        return all(failure is None for _what, failure in self.checks)


def explain(token: str, client: ApiClient) -> tuple[str | None, list[PolicyReport]]:
    """Every check of every policy of the token's issuer, passed or not, for a person testing a
    token: (a refusal before any policy applies, or None; each policy's report). Nothing is
    recorded and no token is issued."""
    try:
        header, unverified = _unverified(token)
    except FederationRejected as exc:
        return exc.description, []
    issuer = unverified.get("iss")
    policies = [p for p in client.trust_policies.all() if p.issuer == issuer]
    if not isinstance(issuer, str) or not policies:
        return "no trust policy of the client accepts the external token's iss", []
    now = int(timezone.now().timestamp())
    reports = []
    for policy in policies:
        checks: list[tuple[str, str | None]] = [("alg", None), ("iss", None)]
        try:
            keys = (
                policy.jwks["keys"]
                if policy.jwks is not None
                else issuer_keys(issuer, header.get("kid"))
            )
            claims = _verified_claims(token, header, keys)
        except FederationRejected as exc:
            reports.append(
                PolicyReport(policy, [*checks, ("signature, exp, nbf", exc.description)])
            )
            continue
        except IssuerUnavailable:
            failure = "the issuer's keys cannot be fetched right now"
            reports.append(PolicyReport(policy, [*checks, ("signature, exp, nbf", failure)]))
            continue
        checks.append(("signature, exp, nbf", None))
        reports.append(PolicyReport(policy, checks + policy_checks(policy, claims, now)))
    return None, reports
