"""DPoP proofs (RFC 9449): checked here once, for the authorization server and for APIs.

A DPoP proof is a JWT the client signs, for one HTTP request, with a key that never leaves it;
its public key rides in the JWT's header. An access token bound to that key (``cnf.jkt``, the
key's RFC 7638 thumbprint) is useless to whoever steals it without the key. ``verify_proof``
applies RFC 9449 §4.3 in full; the authorization server (its token endpoint) and the kit's
``TokenVerifier.verify_dpop`` (an API's request, with ``ath`` and ``jkt``) both call it, so the
rules live in one place. It imports only PyJWT, cryptography and the standard library.

Replay (§11.1): each proof's ``jti`` is remembered for as long as its ``iat`` stays acceptable,
in a ``ReplayCache``: ``MemoryReplayCache`` for one process (the default of an API), or any
object with the same ``remember`` method backed by Redis or a database when several processes
must share it (the authorization server uses its own shared store).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

__all__ = [
    "DPOP_ALGORITHMS",
    "DPoPProof",
    "InvalidDPoPProof",
    "MemoryReplayCache",
    "ReplayCache",
    "UseDPoPNonce",
    "access_token_hash",
    "jwk_thumbprint",
    "normalize_uri",
    "verify_proof",
]

#: The proof algorithms accepted (RFC 9449 §4.3 step 5: asymmetric only; never ``none`` or HS*).
DPOP_ALGORITHMS: tuple[str, ...] = ("ES256", "RS256", "PS256", "EdDSA")

_MAX_PROOF_LENGTH = 8 * 1024
_MAX_JTI_LENGTH = 256
_MIN_RSA_BITS = 2048
# The members that make a JWK private (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# RFC 7638 §3.2: the members a thumbprint covers, per key type.
_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


class InvalidDPoPProof(Exception):
    """The proof is missing, malformed, or does not match the request (``invalid_dpop_proof``).

    ``description`` is a fixed sentence, safe to send back in ``error_description``.
    """

    error = "invalid_dpop_proof"

    def __init__(self, description: str) -> None:
        self.description = description
        super().__init__(description)


class UseDPoPNonce(InvalidDPoPProof):
    """The server wants a proof carrying its current nonce (RFC 9449 §8, ``use_dpop_nonce``)."""

    error = "use_dpop_nonce"


class ReplayCache(Protocol):
    """Where the ``jti`` of accepted proofs are remembered."""

    def remember(self, key: str, ttl: float) -> bool:
        """Record ``key`` for ``ttl`` seconds; False when it was there already (a replay).

        Must be atomic: of two concurrent calls with one key, exactly one returns True."""
        ...  # pragma: no cover - a protocol


class MemoryReplayCache:
    """A ``ReplayCache`` for one process: thread-safe, bounded, forgetting expired keys.

    When it is full of keys that have not expired it refuses new ones (a proof is then refused
    rather than a replay let through); ``max_entries`` bounds its memory.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, key: str, ttl: float) -> bool:
        """Record ``key``; False when it was seen within its ``ttl``."""
        now = time.monotonic()
        with self._lock:
            until = self._seen.get(key)
            if until is not None and until > now:
                return False
            # Entries are appended in time order and share one ttl in practice: the oldest first.
            while self._seen:
                oldest, oldest_until = next(iter(self._seen.items()))
                if oldest_until > now:
                    break
                del self._seen[oldest]
            if len(self._seen) >= self.max_entries:
                return False
            self._seen[key] = now + ttl
            self._seen.move_to_end(key)
            return True


@dataclass(frozen=True)
class DPoPProof:
    """A proof that passed: its key's thumbprint (``jkt``), ``jti`` and all its claims."""

    jkt: str
    jti: str
    claims: dict[str, Any]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK (RSA, EC or OKP), base64url."""
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None or any(not isinstance(jwk.get(name), str) for name in members):
        raise ValueError("the JWK lacks the members of its key type")
    canonical = json.dumps({name: jwk[name] for name in members}, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def access_token_hash(access_token: str) -> str:
    """The ``ath`` claim for ``access_token``: base64url SHA-256 of its ASCII (§4.2)."""
    return _b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def _normalize_percent(text: str) -> str:
    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _PERCENT.sub(fix, text)


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 §5.2.4, as written.
    output: list[str] = []
    while path:
        if path.startswith("../"):
            path = path[3:]
        elif path.startswith("./") or path.startswith("/./"):
            path = path[2:]
        elif path == "/.":
            path = "/"
        elif path.startswith("/../"):
            path = path[3:]
            if output:
                output.pop()
        elif path == "/..":
            path = "/"
            if output:
                output.pop()
        elif path in (".", ".."):
            path = ""
        else:
            start = 1 if path.startswith("/") else 0
            end = path.find("/", start)
            end = len(path) if end == -1 else end
            output.append(path[:end])
            path = path[end:]
    return "".join(output)


def normalize_uri(uri: str) -> str | None:
    """An http(s) URI without query and fragment, normalised per RFC 3986 §6.2.2 (case,
    percent-encoding, dot segments) and §6.2.3 (default port, empty path), as RFC 9449 §4.3
    asks before comparing ``htu``; None when it is not an absolute http(s) URI."""
    try:
        parts = urllib.parse.urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and str(port) != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    if parts.username is not None:
        return None  # userinfo has no place in a request's target URI
    path = _remove_dot_segments(_normalize_percent(parts.path)) or "/"
    return f"{scheme}://{netloc}{path}"


def _segment_json(segment: str) -> Any:
    try:
        raw = base64.b64decode(segment + "=" * (-len(segment) % 4), altchars=b"-_", validate=True)
        return json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidDPoPProof("the DPoP proof is not a well-formed JWT") from None


def _public_key(jwk: Any, alg: str) -> Any:
    """The proof's public key from its header, when it is one that suits ``alg``."""
    if not isinstance(jwk, dict):
        raise InvalidDPoPProof("the DPoP proof's header must carry the public key as jwk")
    if _PRIVATE_MEMBERS & jwk.keys():
        raise InvalidDPoPProof("the DPoP proof's jwk must be a public key, not a private one")
    try:
        key = jwt.PyJWK(jwk, algorithm=alg).key
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        raise InvalidDPoPProof("the DPoP proof's jwk is not a usable key for its alg") from None
    if alg == "ES256":
        suits = isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    elif alg == "EdDSA":
        suits = isinstance(key, ed25519.Ed25519PublicKey)
    else:
        suits = isinstance(key, rsa.RSAPublicKey) and key.key_size >= _MIN_RSA_BITS
    if not suits:
        raise InvalidDPoPProof("the DPoP proof's jwk is not a usable key for its alg")
    return key


def verify_proof(
    proof: str | None,
    *,
    method: str,
    uris: Iterable[str],
    replay: ReplayCache,
    max_age: float = 60,
    leeway: float = 5,
    algorithms: Iterable[str] = DPOP_ALGORITHMS,
    access_token: str | None = None,
    jkt: str | None = None,
    check_nonce: Callable[[Any], None] | None = None,
    now: float | None = None,
) -> DPoPProof:
    """Check a DPoP proof (the ``DPoP`` header's value) for one request, per RFC 9449 §4.3.

    ``method`` and ``uris`` are the request's method and its target URI (several when a proxy
    may have changed what the client saw, e.g. the advertised URL beside the one received);
    ``htu`` must match one of them after normalisation. ``iat`` must lie within ``max_age``
    seconds back and ``leeway`` ahead. With ``access_token`` (an API request) the proof must
    carry its ``ath``; with ``jkt`` (the token's ``cnf.jkt``) its key must have that thumbprint.
    ``check_nonce(nonce)`` raises ``UseDPoPNonce`` when the server wants another nonce. The
    ``jti`` is remembered last, in ``replay``, so only a proof that passed every other check
    uses it up.

    Raises ``InvalidDPoPProof`` (or ``UseDPoPNonce``) with a description safe to return.
    """
    if not isinstance(proof, str) or not proof:
        raise InvalidDPoPProof("a DPoP proof is required")
    if len(proof) > _MAX_PROOF_LENGTH or proof.count(".") != 2:
        raise InvalidDPoPProof("the DPoP proof is not a well-formed JWT")
    header = _segment_json(proof.partition(".")[0])
    if not isinstance(header, dict):
        raise InvalidDPoPProof("the DPoP proof is not a well-formed JWT")
    if header.get("typ") != "dpop+jwt":
        raise InvalidDPoPProof('the DPoP proof\'s typ must be "dpop+jwt"')
    allowed = [name for name in algorithms if name in DPOP_ALGORITHMS]
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in allowed:
        raise InvalidDPoPProof(f"the DPoP proof's alg must be one of {', '.join(allowed)}")
    key = _public_key(header.get("jwk"), alg)
    try:
        claims: dict[str, Any] = jwt.decode(
            proof,
            key,
            algorithms=[alg],
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise InvalidDPoPProof("the DPoP proof's signature does not verify") from None
    except jwt.PyJWTError:
        raise InvalidDPoPProof("the DPoP proof is not a well-formed JWT") from None

    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= _MAX_JTI_LENGTH:
        raise InvalidDPoPProof(f"the DPoP proof needs a jti of 1 to {_MAX_JTI_LENGTH} chars")
    if claims.get("htm") != method:
        raise InvalidDPoPProof("the DPoP proof's htm does not match the request's method")
    htu = claims.get("htu")
    wanted = {normalized for uri in uris if (normalized := normalize_uri(uri))}
    if not isinstance(htu, str) or normalize_uri(htu) not in wanted:
        raise InvalidDPoPProof("the DPoP proof's htu does not match the request's URI")
    iat = claims.get("iat")
    current = time.time() if now is None else now
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise InvalidDPoPProof("the DPoP proof needs a numeric iat")
    if iat < current - max_age or iat > current + leeway:
        raise InvalidDPoPProof("the DPoP proof's iat is too old or in the future")
    if check_nonce is not None:
        check_nonce(claims.get("nonce"))
    if access_token is not None:
        ath = claims.get("ath")
        expected = access_token_hash(access_token)
        if not isinstance(ath, str) or not hmac.compare_digest(ath, expected):
            raise InvalidDPoPProof("the DPoP proof's ath does not match the access token")
    try:
        thumbprint = jwk_thumbprint(header["jwk"])
    except ValueError:
        raise InvalidDPoPProof("the DPoP proof's jwk is not a usable key for its alg") from None
    if jkt is not None and not hmac.compare_digest(thumbprint, jkt):
        raise InvalidDPoPProof("the DPoP proof's key is not the one the access token is bound to")
    # Keyed by the key and the jti, hashed: bounded length, and another key's jti never clashes.
    replay_key = _b64url(hashlib.sha256(f"{thumbprint}\x00{jti}".encode()).digest())
    if not replay.remember(replay_key, max_age + leeway):
        raise InvalidDPoPProof("the DPoP proof was used already (jti replayed)")
    return DPoPProof(jkt=thumbprint, jti=jti, claims=claims)
