# Over 500 lines on purpose: the verifier is one self-contained module that a service can vendor.
"""Verify OAuth 2.0 access tokens (signed JWTs) in any Python service.

This module is the resource-server half of the kit. It imports only PyJWT,
cryptography and the standard library, so a service that has never heard of
Django can use it::

    from m2m_auth_kit.verify import TokenVerifier, TokenError

    verifier = TokenVerifier("https://auth.example.com", audience="https://api.example.com")
    claims = verifier.verify(token)          # raises a TokenError subclass on failure
    claims.require_scopes("orders:read")     # raises InsufficientScope

One ``TokenVerifier`` per process is the intended use: it is thread-safe, and
it keeps the issuer's signing keys (JWKS) in memory so that the hot path is a
dictionary lookup and a signature check.

Caching rules, in short:

* Keys are fetched from the JWKS URL (given, or discovered once from the
  issuer's RFC 8414 metadata) and parsed once into ``jwt.PyJWK`` objects.
* They stay fresh for the response's ``Cache-Control: max-age`` (or
  ``jwks_cache_seconds`` when absent), never less than ``min_refetch_interval``
  and never more than 24 hours.
* A token whose ``kid`` is unknown triggers a refetch, but at most one fetch
  per ``min_refetch_interval`` seconds for the whole verifier, and concurrent
  callers wait for the one fetch in flight instead of starting their own. A
  flood of tokens with forged ``kid`` values therefore costs the issuer at most
  one request per interval.
* When a refresh fails (network error, non-200, bad JSON), keys that were
  already cached keep verifying tokens for ``JWKS_STALE_GRACE_SECONDS`` after
  they went stale. We chose availability here: a JWKS outage at the issuer
  should not take down every API that trusts it, and a stale key is still a
  key the issuer published. Revoking a compromised key therefore takes up to
  max-age plus the grace period to reach a resource server that cannot reach
  the issuer; lower the grace (it is a class attribute) if that is too long.
  ``JWKSUnavailable`` is raised only when no cached key can serve the token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from m2m_auth_kit.dpop import DPOP_ALGORITHMS, MemoryReplayCache, ReplayCache, verify_proof

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "Claims",
    "ExpiredToken",
    "InsufficientScope",
    "InvalidToken",
    "JWKSUnavailable",
    "TokenError",
    "TokenVerifier",
]

logger = logging.getLogger(__name__)

#: The only algorithms a verifier will ever accept. All are asymmetric: a
#: resource server holds public keys only, so HS* (which would turn a public key
#: into an HMAC secret) and ``none`` are refused whatever the caller asks for.
SUPPORTED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"}
)

_USER_AGENT = "m2m-auth-verify/0.1 (+python-urllib)"
# Bounds that keep a hostile or broken issuer from costing us memory or CPU.
_MAX_TOKEN_LENGTH = 16 * 1024
_MAX_RESPONSE_BYTES = 1024 * 1024
_MAX_JWKS_LIFETIME = 24 * 3600.0
_MAX_HEADER_CACHE = 64
_INTROSPECTION_CACHE_SECONDS = 10.0
_INTROSPECTION_CACHE_SIZE = 10_000
_MIN_RSA_BITS = 2048
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)

# Which key objects can serve which algorithm ("the key type suits the alg").
_RSA_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_CURVE_ALG = {"secp256r1": "ES256", "secp384r1": "ES384"}


# --- Errors --------------------------------------------------------------------------------------


class TokenError(Exception):
    """Base class of every error the verifier raises.

    ``description`` is a short, fixed sentence that is safe to send back to the
    caller (it never echoes token contents), e.g. in an RFC 6750
    ``error_description``.
    """

    description = "the token could not be verified"

    def __init__(self, description: str | None = None) -> None:
        if description is not None:
            self.description = description
        super().__init__(self.description)


class InvalidToken(TokenError):
    """The token is malformed, badly signed, or its claims do not match (HTTP 401)."""

    description = "the token is invalid"


class ExpiredToken(InvalidToken):
    """The token's ``exp`` (plus leeway) is in the past (HTTP 401)."""

    description = "the token has expired"


class InsufficientScope(TokenError):
    """A valid token lacks scopes the operation requires (HTTP 403).

    ``required`` holds every scope the operation asked for, ``missing`` those
    the token does not carry; both are tuples in the order they were asked for.
    """

    description = "the token lacks a required scope"

    def __init__(self, required: Iterable[str], missing: Iterable[str]) -> None:
        self.required: tuple[str, ...] = tuple(required)
        self.missing: tuple[str, ...] = tuple(missing)
        super().__init__()


class JWKSUnavailable(TokenError):
    """The issuer's keys (or introspection endpoint) cannot be reached (HTTP 503).

    Raised only when no cached key can serve the token. ``retry_after`` is a
    hint in whole seconds for a ``Retry-After`` header.
    """

    description = "the token issuer's keys are unavailable"

    def __init__(self, description: str | None = None, *, retry_after: int = 5) -> None:
        self.retry_after = retry_after
        super().__init__(description)


# --- Claims --------------------------------------------------------------------------------------


class Claims:
    """The verified claims of an access token.

    Attributes:
        client_id: the ``client_id`` claim (RFC 9068), else ``sub``.
        organization_id: the ``oid`` claim, or ``None``.
        scopes: frozenset of granted scopes, from the ``scopes`` array claim,
            else the space-separated ``scope`` string.
        audience: list of the token's audiences (empty when it has none).
        jkt: the thumbprint of the DPoP key the token is bound to (``cnf.jkt``,
            RFC 9449 §6.1), or ``None`` for a bearer token.
        raw: the full claims dictionary as signed by the issuer.
    """

    __slots__ = ("audience", "client_id", "jkt", "organization_id", "raw", "scopes")

    def __init__(self, raw: dict[str, Any]) -> None:
        """Wrap an already verified claims dictionary."""
        self.raw = raw
        client_id = raw.get("client_id")
        self.client_id: str | None = client_id if client_id is not None else raw.get("sub")
        self.organization_id: str | None = raw.get("oid")
        scopes = raw.get("scopes")
        if isinstance(scopes, list):
            self.scopes: frozenset[str] = frozenset(s for s in scopes if isinstance(s, str))
        else:
            scope = raw.get("scope")
            self.scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
        aud = raw.get("aud")
        if isinstance(aud, str):
            self.audience: list[str] = [aud]
        elif isinstance(aud, list):
            self.audience = [a for a in aud if isinstance(a, str)]
        else:
            self.audience = []
        cnf = raw.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        self.jkt: str | None = jkt if isinstance(jkt, str) else None

    @property
    def expires_at(self) -> datetime:
        """When the token expires, as an aware UTC datetime."""
        # Computed on access: most requests never look at it.
        return datetime.fromtimestamp(int(self.raw["exp"]), tz=UTC)

    def has_scopes(self, *names: str) -> bool:
        """Whether the token carries every scope in ``names``."""
        return self.scopes.issuperset(names)

    def require_scopes(self, *names: str) -> None:
        """Raise ``InsufficientScope`` unless the token carries every scope in ``names``."""
        scopes = self.scopes
        missing = tuple(name for name in names if name not in scopes)
        if missing:
            raise InsufficientScope(required=names, missing=missing)

    def __repr__(self) -> str:
        # No raw claims here: reprs end up in logs.
        return f"<Claims client_id={self.client_id!r} scopes={sorted(self.scopes)!r}>"


# --- Internals -----------------------------------------------------------------------------------


class _FetchError(Exception):
    """An HTTP fetch failed; the message is for our logs, never for callers."""


class _Key:
    """One parsed JWK and the algorithms it may verify."""

    __slots__ = ("algorithms", "key", "kid")

    def __init__(self, kid: str | None, key: Any, algorithms: frozenset[str]) -> None:
        self.kid = kid
        self.key = key
        self.algorithms = algorithms


class _KeySet:
    """An immutable snapshot of the issuer's keys; swapped whole, so readers need no lock."""

    __slots__ = ("by_kid", "fresh_until", "keys", "stale_until")

    def __init__(self, keys: list[_Key], fresh_until: float, stale_until: float) -> None:
        self.keys = keys
        self.by_kid = {k.kid: k for k in keys if k.kid is not None}
        self.fresh_until = fresh_until
        self.stale_until = stale_until

    def find(self, kid: str | None, alg: str) -> _Key | None:
        if kid is not None:
            return self.by_kid.get(kid)
        # No kid: acceptable only when exactly one key could have signed it, so a
        # token without kid never makes us try several keys.
        candidates = [k for k in self.keys if alg in k.algorithms]
        return candidates[0] if len(candidates) == 1 else None


def _algorithms_for(key: Any, jwk_alg: str | None, allowed: frozenset[str]) -> frozenset[str]:
    """The allowed algorithms this key object can serve (empty if none)."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < _MIN_RSA_BITS:
            return frozenset()
        suitable = _RSA_ALGS
    elif isinstance(key, ec.EllipticCurvePublicKey):
        alg = _EC_CURVE_ALG.get(key.curve.name)
        suitable = frozenset({alg}) if alg else frozenset()
    elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        suitable = frozenset({"EdDSA"})
    else:
        # Private keys, HMAC secrets and anything else have no place in a JWKS we trust.
        return frozenset()
    if jwk_alg is not None:
        suitable = suitable & {jwk_alg}
    return suitable & allowed


def _parse_jwks(document: Any, allowed: frozenset[str]) -> list[_Key]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise _FetchError("JWKS is not an object with a 'keys' array")
    keys: list[_Key] = []
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        kid = entry.get("kid")
        jwk_alg = entry.get("alg")
        if (kid is not None and not isinstance(kid, str)) or (
            jwk_alg is not None and not isinstance(jwk_alg, str)
        ):
            continue
        if jwk_alg is not None and jwk_alg not in allowed:
            continue
        try:
            # PyJWK picks the algorithm from alg/kty/crv; for an RSA key without
            # alg that is RS256, but we only use its parsed key object and decide
            # the usable algorithms ourselves (an RSA key may also serve PS256).
            parsed = jwt.PyJWK(entry)
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            logger.warning("skipping unusable JWK kid=%r: %s", kid, exc)
            continue
        algorithms = _algorithms_for(parsed.key, jwk_alg, allowed)
        if algorithms:
            keys.append(_Key(kid, parsed.key, algorithms))
    return keys


def _max_age(cache_control: str | None) -> float | None:
    if not cache_control:
        return None
    lowered = cache_control.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return 0.0
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None


def _b64url_json(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def _basic_auth(client_id: str, client_secret: str) -> str:
    # RFC 6749 §2.3.1: form-urlencode each part before Base64, so ":" and
    # non-ASCII characters in an id or secret survive.
    user = urllib.parse.quote_plus(client_id, safe="")
    password = urllib.parse.quote_plus(client_secret, safe="")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _normalise_typ(typ: str) -> str:
    typ = typ.lower()
    # RFC 7515 §4.1.9: "application/" may be omitted from a media type in typ.
    return typ[12:] if typ.startswith("application/") else typ


def _discovery_urls(issuer: str) -> list[str]:
    """Where RFC 8414 metadata may live, most standard first."""
    parts = urllib.parse.urlsplit(issuer)
    path = parts.path.rstrip("/")
    well_known = "/.well-known/oauth-authorization-server"
    # RFC 8414 §3.1 inserts the well-known segment between host and path.
    urls = [urllib.parse.urlunsplit((parts.scheme, parts.netloc, well_known + path, "", ""))]
    if path:
        # Many servers publish it after the issuer path instead (the OIDC habit).
        urls.append(issuer.rstrip("/") + well_known)
    return urls


# PyJWT messages are fine for logs but not all are fit for callers; map each
# failure to one fixed sentence.
_JWT_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ImmatureSignatureError, "the token is not yet valid"),
    (jwt.InvalidAudienceError, "the token is not meant for this audience"),
    (jwt.InvalidIssuerError, "the token was issued by an untrusted issuer"),
    (jwt.InvalidSignatureError, "the token signature is invalid"),
    (jwt.InvalidAlgorithmError, "the token algorithm is not allowed"),
    (jwt.MissingRequiredClaimError, "the token is missing a required claim"),
    (jwt.DecodeError, "the token is malformed"),
)


def _invalid(exc: jwt.PyJWTError) -> InvalidToken:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return ExpiredToken()
    for cls, description in _JWT_ERRORS:
        if isinstance(exc, cls):
            return InvalidToken(description)
    return InvalidToken()


# --- The verifier --------------------------------------------------------------------------------


class TokenVerifier:
    """Verifies JWT access tokens issued by one authorization server.

    Args:
        issuer: the exact ``iss`` value tokens must carry, also the base for
            RFC 8414 discovery.
        jwks_url: where the issuer publishes its keys; discovered lazily from
            ``{issuer}/.well-known/oauth-authorization-server`` when ``None``.
        audience: the ``aud`` value(s) this service accepts; a token passes
            when any of its audiences matches any of these. ``None`` skips the
            audience check (the token may then carry any ``aud`` or none).
        leeway: seconds of clock skew tolerated on ``exp`` and ``nbf``.
        algorithms: accepted signature algorithms, a subset of
            ``SUPPORTED_ALGORITHMS`` (``none`` and HS* are always refused).
        required_typ: when set, the token header's ``typ`` must match it
            (case-insensitive; ``"at+jwt"`` equals ``"application/at+jwt"``).
        introspect: after local verification, also ask the issuer's RFC 7662
            introspection endpoint whether the token is still active (catches
            revoked tokens at the cost of one request per token every few seconds).
        introspection_url: the introspection endpoint; discovered when ``None``.
        client_id, client_secret: this service's credentials for introspection.
        jwks_cache_seconds: how long keys stay fresh when the JWKS response has
            no ``Cache-Control: max-age``.
        min_refetch_interval: the least time between two JWKS fetches, whatever
            the number of unknown ``kid`` values seen.
        http_timeout: timeout in seconds for each HTTP request to the issuer.
        jwks_loader: a callable returning the JWKS document, used instead of
            fetching ``jwks_url`` (for an authorization server that verifies its
            own tokens in-process: a sync worker must never call itself over HTTP).
            Its keys stay fresh for ``jwks_cache_seconds``.
        dpop_max_age: seconds a DPoP proof's ``iat`` may lie in the past
            (``verify_dpop``); 5 seconds of clock skew are allowed ahead.
        dpop_replay_cache: where the ``jti`` of accepted DPoP proofs are kept
            (RFC 9449 §11.1); by default in this process (``MemoryReplayCache``).
            Give one backed by Redis when several processes serve one API.
        dpop_algorithms: the DPoP proof algorithms accepted, a subset of
            ``m2m_auth_kit.dpop.DPOP_ALGORITHMS``.
        dpop_required: accept DPoP-bound tokens only: ``verify`` then refuses every
            token, and the guards answer with a ``DPoP`` challenge alone.
    """

    #: After keys go stale, how long they keep verifying tokens while every
    #: refresh fails (see the module docstring for why we prefer availability).
    JWKS_STALE_GRACE_SECONDS: float = 3600.0

    def __init__(
        self,
        issuer: str,
        *,
        jwks_url: str | None = None,
        audience: str | Iterable[str] | None = None,
        leeway: float = 30,
        algorithms: Iterable[str] = ("RS256",),
        required_typ: str | None = None,
        introspect: bool = False,
        introspection_url: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        jwks_cache_seconds: float = 300,
        min_refetch_interval: float = 5.0,
        http_timeout: float = 5.0,
        jwks_loader: Callable[[], Any] | None = None,
        dpop_max_age: float = 60,
        dpop_replay_cache: ReplayCache | None = None,
        dpop_algorithms: Iterable[str] = DPOP_ALGORITHMS,
        dpop_required: bool = False,
    ) -> None:
        """Configure the verifier; nothing is fetched until the first ``verify``."""
        if not issuer:
            raise ValueError("issuer is required")
        algorithms = tuple(algorithms)
        unsupported = set(algorithms) - SUPPORTED_ALGORITHMS
        if not algorithms or unsupported:
            raise ValueError(
                f"algorithms must be a non-empty subset of {sorted(SUPPORTED_ALGORITHMS)}; "
                f"refused: {sorted(unsupported)}"
            )
        if introspect and not (client_id and client_secret):
            raise ValueError("introspection needs client_id and client_secret")
        if leeway < 0 or min_refetch_interval < 0 or jwks_cache_seconds < 0:
            raise ValueError("leeway, min_refetch_interval and jwks_cache_seconds must be >= 0")
        for url in (jwks_url, introspection_url):
            if url is not None:
                self._check_url(url)

        self.issuer = issuer
        self.jwks_url = jwks_url
        if audience is None or isinstance(audience, str):
            self.audience: str | list[str] | None = audience
        else:
            self.audience = list(audience)
        self.leeway = leeway
        self.algorithms = algorithms
        self.required_typ = _normalise_typ(required_typ) if required_typ else None
        self.introspect = introspect
        self.introspection_url = introspection_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.jwks_cache_seconds = jwks_cache_seconds
        self.min_refetch_interval = min_refetch_interval
        self.http_timeout = http_timeout
        self.jwks_loader = jwks_loader
        self.dpop_algorithms = tuple(a for a in dpop_algorithms if a in DPOP_ALGORITHMS)
        if not self.dpop_algorithms or dpop_max_age <= 0:
            raise ValueError(f"dpop_algorithms: a subset of {DPOP_ALGORITHMS}; dpop_max_age > 0")
        self.dpop_max_age = dpop_max_age
        self.dpop_required = dpop_required
        self.dpop_replay_cache: ReplayCache = (
            MemoryReplayCache() if dpop_replay_cache is None else dpop_replay_cache
        )

        self._allowed = frozenset(algorithms)
        self._algorithm_list = list(algorithms)
        # One PyJWT instance with our options baked in, so decode() merges no
        # options per call. exp and iss are required; aud only when configured.
        self._jwt = jwt.PyJWT(
            options={
                "require": ["exp", "iss"],
                "verify_aud": audience is not None,
                "enforce_minimum_key_length": True,
            }
        )
        self._decode = self._jwt.decode
        self._opener = urllib.request.build_opener()

        self._keyset: _KeySet | None = None
        self._fetch_lock = threading.Lock()
        self._last_fetch_at = float("-inf")
        self._last_unknown_fetch_at = float("-inf")
        self._last_fetch_failed = False
        self._metadata: dict[str, Any] | None = None
        # header segment -> (alg, kid); filled only by tokens that verified, so
        # forged headers cannot evict the real ones.
        self._headers: dict[str, tuple[str, str | None]] = {}
        self._introspected: OrderedDict[bytes, float] = OrderedDict()
        self._introspected_lock = threading.Lock()

    # -- public API ------------------------------------------------------------------------------

    def verify(self, token: str | bytes) -> Claims:
        """Verify a bearer ``token`` and return its claims.

        A DPoP-bound token (``cnf.jkt``) is refused here: it is only good with a
        proof of its key (``verify_dpop``), or a stolen one would work as a bearer token.

        Raises:
            InvalidToken: bad format, signature, algorithm, key, issuer,
                audience, ``nbf`` or ``typ``; ``ExpiredToken`` when expired;
                also when introspection says the token is not active, or when
                the token is DPoP-bound.
            JWKSUnavailable: the keys (or the introspection endpoint) cannot be
                fetched and nothing cached can serve this token.
        """
        if self.dpop_required:
            raise InvalidToken("this API accepts DPoP-bound tokens only")
        claims = self._verified(token)
        if claims.jkt is not None:
            raise InvalidToken("the token is DPoP-bound: send it with the DPoP scheme and a proof")
        self.check_claims(claims)
        return claims

    def verify_dpop(self, token: str, proof: str | None, *, method: str, uri: str) -> Claims:
        """Verify a DPoP-bound ``token`` sent as ``Authorization: DPoP <token>`` with the
        ``DPoP`` header ``proof``, for a request of ``method`` to ``uri`` (scheme, host and
        path as the client addressed them; query and fragment are ignored).

        The token is verified as ``verify`` does; then the proof (RFC 9449 §4.3 and §7.1): its
        key's thumbprint is the token's ``cnf.jkt``, its ``ath`` the token's hash, ``htm`` and
        ``htu`` this request, ``iat`` fresh, and its ``jti`` unseen (``dpop_replay_cache``).

        Raises:
            InvalidToken: the token is refused (as by ``verify``), or not DPoP-bound.
            m2m_auth_kit.dpop.InvalidDPoPProof: the proof is missing or refused.
            JWKSUnavailable: as ``verify``.
        """
        claims = self._verified(token)
        if claims.jkt is None:
            raise InvalidToken("the token is not DPoP-bound: send it with the Bearer scheme")
        self.check_claims(claims)
        verify_proof(
            proof,
            method=method,
            uris=(uri,),
            replay=self.dpop_replay_cache,
            max_age=self.dpop_max_age,
            algorithms=self.dpop_algorithms,
            access_token=token,
            jkt=claims.jkt,
        )
        return claims

    def check_claims(self, claims: Claims) -> None:
        """Called with the claims of every token that verified, bearer or DPoP; does nothing.

        Override it to refuse more (raise ``InvalidToken``): a revocation list, a live-client
        check. Overriding ``verify`` instead would miss the tokens ``verify_dpop`` accepts.
        """

    def _verified(self, token: str | bytes) -> Claims:
        """The claims of a token whose signature and claims verify (introspected if asked)."""
        if isinstance(token, bytes):
            try:
                token = token.decode("ascii")
            except UnicodeDecodeError:
                raise InvalidToken("the token is malformed") from None
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_LENGTH:
            raise InvalidToken("the token is malformed")

        header_segment = token.partition(".")[0]
        cached = self._headers.get(header_segment)
        if cached is None:
            alg, kid = self._read_header(header_segment)
        else:
            alg, kid = cached

        key = self._key_for(kid, alg)
        if alg not in key.algorithms:
            # The JWK's own alg, or its type, does not fit the token's alg.
            raise InvalidToken("the token algorithm does not match its key")
        try:
            payload = self._decode(
                token,
                key.key,
                algorithms=self._algorithm_list,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
            )
        except jwt.PyJWTError as exc:
            raise _invalid(exc) from None

        if cached is None and len(self._headers) < _MAX_HEADER_CACHE:
            self._headers[header_segment] = (alg, kid)
        claims = Claims(payload)
        if self.introspect:
            self._check_active(token, claims)
        return claims

    # -- header ----------------------------------------------------------------------------------

    def _read_header(self, segment: str) -> tuple[str, str | None]:
        # PyJWT parses the header again, strictly, inside decode(); this lenient
        # read only picks the key. A header it would reject fails there.
        try:
            header = _b64url_json(segment)
        except (ValueError, binascii.Error):
            raise InvalidToken("the token is malformed") from None
        if not isinstance(header, dict):
            raise InvalidToken("the token is malformed")
        alg = header.get("alg")
        # Checked here, before any key lookup, so "none" and HS* never reach a key.
        if not isinstance(alg, str) or alg not in self._allowed:
            raise InvalidToken("the token algorithm is not allowed")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("the token is malformed")
        if self.required_typ is not None:
            typ = header.get("typ")
            if not isinstance(typ, str) or _normalise_typ(typ) != self.required_typ:
                raise InvalidToken("the token type is not accepted")
        return alg, kid

    # -- keys ------------------------------------------------------------------------------------

    def _key_for(self, kid: str | None, alg: str) -> _Key:
        keyset = self._keyset
        if keyset is not None:
            key = keyset.find(kid, alg)
            if key is not None and time.monotonic() < keyset.fresh_until:
                return key  # the hot path: no lock, no fetch
        keyset = self._refresh(kid, alg)
        key = keyset.find(kid, alg)
        if key is None:
            raise InvalidToken("the token was signed with an unknown key")
        return key

    def _refresh(self, kid: str | None, alg: str) -> _KeySet:
        """Return a key set that may know ``kid``, fetching at most once per interval."""
        keyset = self._keyset
        serves = keyset is not None and keyset.find(kid, alg) is not None
        if serves and not self._fetch_lock.acquire(blocking=False):
            # Our key is only stale and another thread is already refreshing:
            # keep serving rather than queueing behind its HTTP request.
            assert keyset is not None
            if time.monotonic() < keyset.stale_until:
                return keyset
            self._fetch_lock.acquire()
        elif not serves:
            # Unknown kid (or nothing cached): wait for the fetch in flight, if
            # any, and use its result instead of fetching again.
            self._fetch_lock.acquire()
        try:
            return self._refresh_locked(kid, alg)
        finally:
            self._fetch_lock.release()

    def _refresh_locked(self, kid: str | None, alg: str) -> _KeySet:
        keyset = self._keyset
        now = time.monotonic()
        if keyset is not None and now < keyset.fresh_until and keyset.find(kid, alg) is not None:
            return keyset  # refreshed by the thread we waited for
        # Unknown kids may cause one fetch per interval, and a failing issuer is retried at most
        # once per interval. The first fetch and routine refreshes of stale keys don't use up the
        # unknown-kid allowance: a key rotated just after them is picked up at once.
        unknown = keyset is not None and keyset.find(kid, alg) is None
        interval = self.min_refetch_interval
        if (unknown and now - self._last_unknown_fetch_at < interval) or (
            self._last_fetch_failed and now - self._last_fetch_at < interval
        ):
            # Throttled: answer from what we have.
            if keyset is not None and now < keyset.stale_until:
                if self._last_fetch_failed and keyset.find(kid, alg) is None:
                    raise JWKSUnavailable(retry_after=self._retry_after())
                return keyset
            raise JWKSUnavailable(retry_after=self._retry_after())

        self._last_fetch_at = now
        if unknown:
            self._last_unknown_fetch_at = now
        try:
            fresh = self._fetch_keys()
        except _FetchError as exc:
            self._last_fetch_failed = True
            if (
                keyset is not None
                and now < keyset.stale_until
                and keyset.find(kid, alg) is not None
            ):
                logger.warning("JWKS refresh failed, serving cached keys: %s", exc)
                return keyset
            logger.error("JWKS fetch failed: %s", exc)
            raise JWKSUnavailable(retry_after=self._retry_after()) from None
        self._last_fetch_failed = False
        self._keyset = fresh
        if fresh.find(kid, alg) is None:
            # Fetched for a kid that is still unknown (a first fetch for a forged kid): that
            # uses the allowance too, so a flood costs one fetch per interval from the start.
            self._last_unknown_fetch_at = now
        return fresh

    def _retry_after(self) -> int:
        return max(1, int(self.min_refetch_interval + 0.999))

    def _fetch_keys(self) -> _KeySet:
        if self.jwks_loader is not None:
            url = "jwks_loader"
            headers: Mapping[str, str] = {}
            try:
                document = self.jwks_loader()
            except Exception as exc:  # a loader failure is an outage, like a network error
                raise _FetchError(f"jwks_loader failed: {exc.__class__.__name__}") from None
        else:
            url = self.jwks_url or self._discover("jwks_uri")
            document, headers = self._get_json(url)
        keys = _parse_jwks(document, self._allowed)
        max_age = _max_age(headers.get("Cache-Control"))
        lifetime = self.jwks_cache_seconds if max_age is None else max_age
        # Never fresher than the refetch throttle allows, never older than a day.
        lifetime = min(max(lifetime, self.min_refetch_interval), _MAX_JWKS_LIFETIME)
        fresh_until = time.monotonic() + lifetime
        logger.info("fetched %d signing keys from %s, fresh for %ss", len(keys), url, lifetime)
        return _KeySet(keys, fresh_until, fresh_until + self.JWKS_STALE_GRACE_SECONDS)

    def _discover(self, field: str) -> str:
        """A URL from the issuer's RFC 8414 metadata, fetched once and kept."""
        if self._metadata is None:
            errors = []
            for url in _discovery_urls(self.issuer):
                try:
                    document, _ = self._get_json(url)
                except _FetchError as exc:
                    errors.append(str(exc))
                    continue
                if not isinstance(document, dict):
                    raise _FetchError(f"{url}: metadata is not a JSON object")
                # RFC 8414 §3.3: metadata for another issuer must not be used.
                if document.get("issuer") != self.issuer:
                    raise _FetchError(f"{url}: metadata names another issuer")
                self._metadata = document
                break
            else:
                raise _FetchError("discovery failed: " + "; ".join(errors))
        value = self._metadata.get(field)
        if not isinstance(value, str):
            raise _FetchError(f"issuer metadata has no {field}")
        self._check_url(value)
        return value

    @staticmethod
    def _check_url(url: str) -> None:
        # urllib also speaks file:// and ftp://; metadata must not point us there.
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {url!r}")

    def _get_json(
        self, url: str, data: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[Any, Mapping[str, str]]:
        try:
            self._check_url(url)
        except ValueError as exc:
            raise _FetchError(str(exc)) from None
        request = urllib.request.Request(  # noqa: S310 - scheme checked just above
            url,
            data=data,
            headers={"Accept": "application/json", "User-Agent": _USER_AGENT, **(headers or {})},
        )
        try:
            with self._opener.open(request, timeout=self.http_timeout) as response:
                if response.status != 200:
                    raise _FetchError(f"{url}: HTTP {response.status}")
                body = response.read(_MAX_RESPONSE_BYTES + 1)
                response_headers = response.headers
        except urllib.error.HTTPError as exc:
            exc.close()
            raise _FetchError(f"{url}: HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:  # URLError, timeouts, resets, bad URLs
            raise _FetchError(f"{url}: {exc}") from None
        if len(body) > _MAX_RESPONSE_BYTES:
            raise _FetchError(f"{url}: response too large")
        try:
            return json.loads(body), response_headers
        except ValueError:
            raise _FetchError(f"{url}: response is not JSON") from None

    # -- introspection ---------------------------------------------------------------------------

    def _check_active(self, token: str, claims: Claims) -> None:
        # Keyed by a hash: the cache must never hold a usable bearer token.
        digest = hashlib.sha256(token.encode("ascii")).digest()
        now = time.monotonic()
        with self._introspected_lock:
            until = self._introspected.get(digest)
            if until is not None:
                if now < until:
                    return
                del self._introspected[digest]

        url = self.introspection_url
        try:
            if url is None:
                with self._fetch_lock:
                    url = self._discover("introspection_endpoint")
            assert self.client_id is not None and self._client_secret is not None
            body = urllib.parse.urlencode(
                {"token": token, "token_type_hint": "access_token"}
            ).encode("ascii")
            answer, _ = self._get_json(
                url,
                data=body,
                headers={
                    "Authorization": _basic_auth(self.client_id, self._client_secret),
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
        except _FetchError as exc:
            logger.error("token introspection failed: %s", exc)
            raise JWKSUnavailable(
                "the token introspection endpoint is unavailable",
                retry_after=self._retry_after(),
            ) from None
        if not isinstance(answer, dict) or answer.get("active") is not True:
            raise InvalidToken("token is not active")

        # A positive answer is reused briefly: revocation then takes effect
        # within this many seconds, in exchange for one request per token per
        # window instead of one per API call.
        remaining = int(claims.raw["exp"]) - time.time()
        ttl = min(_INTROSPECTION_CACHE_SECONDS, remaining)
        if ttl > 0:
            with self._introspected_lock:
                self._introspected[digest] = now + ttl
                self._introspected.move_to_end(digest)
                while len(self._introspected) > _INTROSPECTION_CACHE_SIZE:
                    self._introspected.popitem(last=False)
