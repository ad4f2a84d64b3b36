"""Client key pairs and client assertions (RFC 7523), built the way a client would build them."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ISSUER = "http://127.0.0.1:8000"
TOKEN_URL = f"{ISSUER}/oauth/token"

_rsa_cache: dict[tuple[int, int, int], Any] = {}


def rsa_key(index: int = 0, bits: int = 2048, exponent: int = 65537) -> rsa.RSAPrivateKey:
    """Deterministic per test run (cached): RSA generation is slow."""
    if (index, bits, exponent) not in _rsa_cache:
        _rsa_cache[(index, bits, exponent)] = rsa.generate_private_key(
            public_exponent=exponent, key_size=bits
        )
    return _rsa_cache[(index, bits, exponent)]


def public_jwk(private_key: Any, **extra: Any) -> dict[str, Any]:
    """The public JWK of ``private_key`` (no kid unless given)."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    return {**jwk, **extra}


def private_jwk(private_key: Any) -> dict[str, Any]:
    if isinstance(private_key, rsa.RSAPrivateKey):
        return RSAAlgorithm.to_jwk(private_key, as_dict=True)
    return ECAlgorithm.to_jwk(private_key, as_dict=True)


@dataclass
class Signer:
    """A client's private key and how it signs assertions."""

    private_key: Any
    alg: str
    kid: str | None

    def assertion(
        self,
        client_id: str,
        *,
        aud: Any = TOKEN_URL,
        lifetime: int = 60,
        kid: Any = ...,
        alg: str | None = None,
        **overrides: Any,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": client_id,
            "sub": client_id,
            "aud": aud,
            "iat": now,
            "exp": now + lifetime,
            "jti": secrets.token_urlsafe(16),
        }
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        headers = {}
        kid = self.kid if kid is ... else kid
        if kid is not None:
            headers["kid"] = kid
        return jwt.encode(claims, self.private_key, algorithm=alg or self.alg, headers=headers)


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def assertion_form(assertion: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        **extra,
    }
