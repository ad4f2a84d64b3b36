"""Clients' public keys as JWKs (RFC 7517/7518): strict validation and the RFC 7638 thumbprint.

A client registers a public key for ``private_key_jwt``. Whatever it sends, only the public
members we understand are kept; a JWK carrying private members is refused outright, because
the sender has just leaked its private key to us and must learn that, not have it silently
dropped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

# Members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

# Curve -> (cryptography curve, coordinate length in bytes, the one algorithm allowed).
EC_CURVES: dict[str, tuple[ec.EllipticCurve, int, str]] = {
    "P-256": (ec.SECP256R1(), 32, "ES256"),
    "P-384": (ec.SECP384R1(), 48, "ES384"),
}
RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256")
RSA_MIN_BITS = 2048
# The one public exponent we accept: what every current library generates (F4). Small exponents
# such as 3 are what the textbook attacks on RSA signatures exploit (Bleichenbacher's 2006
# forgery against lax PKCS#1 v1.5 verifiers); no honest key needs one.
RSA_EXPONENT = 65537
RSA_MAX_BITS = 8192
# Every algorithm a client assertion may be signed with: never "none", never HS*.
ASSERTION_ALGORITHMS = (*RSA_ALGORITHMS, "ES256", "ES384")
MAX_KID_LENGTH = 128


class JWKError(ValueError):
    """The JWK is not an acceptable public signing key; ``field`` names the member."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class PublicJWK:
    """A validated public key: what to store and how to verify with it."""

    kid: str
    kty: str
    alg: str
    jwk: dict[str, str]
    public_key: Any


def b64url_decode(value: Any, field: str) -> bytes:
    """Base64url without padding (RFC 7515 §2), strictly: any other character is an error."""
    if not isinstance(value, str) or not value or "=" in value:
        raise JWKError(field, f"{field} must be a non-empty base64url string without padding")
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise JWKError(field, f"{field} is not valid base64url") from exc


def thumbprint(jwk: dict[str, str]) -> str:
    """The RFC 7638 SHA-256 thumbprint: the required members, sorted, no whitespace."""
    if jwk["kty"] == "RSA":
        required = {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}
    else:
        required = {"crv": jwk["crv"], "kty": "EC", "x": jwk["x"], "y": jwk["y"]}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def _rsa(jwk: dict[str, Any]) -> tuple[dict[str, str], Any, str]:
    n_bytes, e_bytes = b64url_decode(jwk.get("n"), "n"), b64url_decode(jwk.get("e"), "e")
    if n_bytes[0] == 0 or e_bytes[0] == 0:
        raise JWKError("n", "n and e must be minimal big-endian integers (no leading zeros)")
    n, e = int.from_bytes(n_bytes, "big"), int.from_bytes(e_bytes, "big")
    if not RSA_MIN_BITS <= n.bit_length() <= RSA_MAX_BITS:
        raise JWKError("n", f"an RSA key must have {RSA_MIN_BITS} to {RSA_MAX_BITS} bits")
    if e != RSA_EXPONENT:
        raise JWKError("e", f"an RSA key's public exponent e must be {RSA_EXPONENT} (AQAB)")
    try:
        public_key = rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError as exc:
        raise JWKError("e", "not a valid RSA public key") from exc
    alg = jwk.get("alg", "RS256")
    if alg not in RSA_ALGORITHMS:
        raise JWKError("alg", f"an RSA key's alg must be one of {', '.join(RSA_ALGORITHMS)}")
    return {"kty": "RSA", "n": jwk["n"], "e": jwk["e"]}, public_key, alg


def _ec(jwk: dict[str, Any]) -> tuple[dict[str, str], Any, str]:
    crv = jwk.get("crv")
    if crv not in EC_CURVES:
        raise JWKError("crv", f"an EC key's crv must be one of {', '.join(EC_CURVES)}")
    curve, size, curve_alg = EC_CURVES[crv]
    x, y = b64url_decode(jwk.get("x"), "x"), b64url_decode(jwk.get("y"), "y")
    if len(x) != size or len(y) != size:
        raise JWKError("x", f"x and y of a {crv} key are {size} bytes each")
    try:
        public_key = ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve
        ).public_key()
    except ValueError as exc:
        raise JWKError("x", f"the point is not on the {crv} curve") from exc
    alg = jwk.get("alg", curve_alg)
    if alg != curve_alg:
        raise JWKError("alg", f"a {crv} key's alg must be {curve_alg}")
    return {"kty": "EC", "crv": crv, "x": jwk["x"], "y": jwk["y"]}, public_key, alg


def parse_public_jwk(jwk: Any) -> PublicJWK:
    """Validate a client's JWK and keep its public members only.

    Accepted: RSA of 2048 to 8192 bits with e = 65537 (alg RS256, RS384, RS512 or PS256; default
    RS256) and EC P-256 (ES256) or P-384 (ES384). ``use``, when given, must be ``sig``; ``kid``
    defaults to the RFC 7638 thumbprint. Raises ``JWKError`` for anything else.
    """
    if not isinstance(jwk, dict):
        raise JWKError("jwk", "jwk must be a JSON object")
    leaked = sorted(PRIVATE_MEMBERS & set(jwk))
    if leaked:
        raise JWKError(
            "jwk",
            f"the JWK holds private key members ({', '.join(leaked)}); send the public key only, "
            "and treat this private key as compromised",
        )
    kty = jwk.get("kty")
    if kty == "RSA":
        public, public_key, alg = _rsa(jwk)
    elif kty == "EC":
        public, public_key, alg = _ec(jwk)
    else:
        raise JWKError("kty", "kty must be RSA or EC")
    if "alg" in jwk and not isinstance(jwk["alg"], str):
        raise JWKError("alg", "alg must be a string")
    if "use" in jwk and jwk["use"] != "sig":
        raise JWKError("use", "use must be sig")
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        raise JWKError("key_ops", "key_ops, when given, must be a list containing verify")
    kid = jwk.get("kid")
    if kid is None:
        kid = thumbprint(public)
    elif (
        not isinstance(kid, str)
        or not kid
        or len(kid) > MAX_KID_LENGTH
        or any(not 0x20 < ord(c) < 0x7F for c in kid)
    ):
        raise JWKError("kid", f"kid must be 1 to {MAX_KID_LENGTH} printable ASCII characters")
    stored = {**public, "kid": kid, "use": "sig", "alg": alg}
    return PublicJWK(kid=kid, kty=kty, alg=alg, jwk=stored, public_key=public_key)
