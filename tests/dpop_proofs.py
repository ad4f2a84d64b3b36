"""DPoP proofs (RFC 9449 §4.2) as a client builds them, written for the tests from the RFC's text
and not from our kit (``m2m_auth_kit.dpop``), so that the kit and the server are checked against
an independent reading: the thumbprint of RFC 7638 §3, ``ath`` of §4.2, and the proof itself."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rfc7638_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 §3.1-3.3: the required members only, lexicographic order, no whitespace,
    UTF-8, SHA-256, base64url."""
    required = {
        "RSA": ("e", "kty", "n"),
        "EC": ("crv", "kty", "x", "y"),
        "OKP": ("crv", "kty", "x"),
    }
    members = {name: jwk[name] for name in sorted(required[jwk["kty"]])}
    text = "{" + ",".join(f'"{k}":"{v}"' for k, v in members.items()) + "}"
    return b64url(hashlib.sha256(text.encode("utf-8")).digest())


def ath_of(access_token: str) -> str:
    """RFC 9449 §4.2: base64url of the SHA-256 of the ASCII access token."""
    return b64url(hashlib.sha256(access_token.encode("ascii")).digest())


@dataclass
class ProofKey:
    """A client's DPoP key pair and its algorithm."""

    private: Any
    alg: str

    @classmethod
    def es256(cls) -> ProofKey:
        return cls(ec.generate_private_key(ec.SECP256R1()), "ES256")

    @classmethod
    def eddsa(cls) -> ProofKey:
        return cls(ed25519.Ed25519PrivateKey.generate(), "EdDSA")

    @classmethod
    def rsa(cls, alg: str = "RS256") -> ProofKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048), alg)

    @property
    def public_jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            return RSAAlgorithm.to_jwk(public, as_dict=True)
        if isinstance(public, ec.EllipticCurvePublicKey):
            return ECAlgorithm.to_jwk(public, as_dict=True)
        return OKPAlgorithm.to_jwk(public, as_dict=True)

    @property
    def private_jwk(self) -> dict[str, Any]:
        if isinstance(self.private, rsa.RSAPrivateKey):
            return RSAAlgorithm.to_jwk(self.private, as_dict=True)
        if isinstance(self.private, ec.EllipticCurvePrivateKey):
            return ECAlgorithm.to_jwk(self.private, as_dict=True)
        return OKPAlgorithm.to_jwk(self.private, as_dict=True)

    @property
    def jkt(self) -> str:
        return rfc7638_thumbprint(self.public_jwk)

    def proof(
        self,
        htm: str,
        htu: str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        iat: float | None = None,
        jti: str | None = None,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
    ) -> str:
        """A proof for one request; ``header`` and ``claims`` override what a client sends."""
        payload: dict[str, Any] = {
            "jti": jti or secrets.token_urlsafe(16),
            "htm": htm,
            "htu": htu,
            "iat": int(time.time() if iat is None else iat),
        }
        if access_token is not None:
            payload["ath"] = ath_of(access_token)
        if nonce is not None:
            payload["nonce"] = nonce
        payload.update(claims or {})
        headers = {"typ": "dpop+jwt", "jwk": self.public_jwk, **(header or {})}
        return jwt.encode(payload, self.private, algorithm=self.alg, headers=headers)


def unsigned_proof(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A JWT built by hand (``alg: none``, or an HMAC), which no library would let us sign."""
    segments = [b64url(json.dumps(part).encode()) for part in (header, claims)]
    return ".".join([*segments, b64url(signature)])


def rfc9449_check(
    proof: str,
    *,
    method: str,
    url: str,
    access_token: str | None = None,
    jkt: str | None = None,
    max_age: int = 60,
) -> dict[str, Any]:
    """RFC 9449 §4.3's checks, step by step, written from the RFC for the tests (the kit's
    caller is checked with this, not with the kit's own verifier). Returns the claims; raises
    AssertionError naming the step that fails."""
    assert "," not in proof, "1: one DPoP header, one value"
    head, _body, _signature = proof.split(".")  # 2: a well-formed JWT
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    assert header["typ"] == "dpop+jwt", "4: typ"
    assert header["alg"] in ("ES256", "RS256", "PS256", "EdDSA"), "5: an asymmetric alg"
    jwk = header["jwk"]
    assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(jwk), "7: a public key only"
    key = jwt.PyJWK(jwk, algorithm=header["alg"]).key
    claims = jwt.decode(proof, key, algorithms=[header["alg"]], options={"verify_iat": False})
    assert isinstance(claims["jti"], str) and claims["jti"], "3: jti"  # 6: signature above
    assert claims["htm"] == method, "8: htm"
    parts = url.split("?")[0].split("#")[0]
    assert claims["htu"] == parts, "9: htu"
    if access_token is not None:
        assert claims["ath"] == ath_of(access_token), "11: ath"
        assert rfc7638_thumbprint(jwk) == jkt, "12: the key the token is bound to"
    assert abs(time.time() - claims["iat"]) <= max_age, "11: iat within the window"
    return claims
