"""Signing keys: creation, rotation, encryption at rest, and the per-process key cache.

Private keys are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under keys
derived by HKDF from ``OAUTH["KEY_ENCRYPTION_KEYS"]``; the first encrypts, all
decrypt, so the key-encryption secret itself can be rotated. A key is parsed
once per process and kept in ``_loaded``.
"""

from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from clients.services.audit import Actor, audit_signing_key
from oauth.models import SigningKey
from oauth.settings import oauth_settings
from portal.lib.encoding import compact_json

SUPPORTED_ALGORITHMS = ("RS256", "ES256")


class SigningKeyDecryptionError(ImproperlyConfigured):
    """A stored signing key cannot be decrypted with the configured key-encryption keys."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64(number: int, length: int | None = None) -> str:
    length = length or (number.bit_length() + 7) // 8
    return b64url(number.to_bytes(length, "big"))


@cache
def _fernet_for(secrets_tuple: tuple[str, ...]) -> MultiFernet:
    fernets = []
    for secret in secrets_tuple:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"m2m signing key encryption v1"
        ).derive(secret.encode())
        fernets.append(Fernet(base64.urlsafe_b64encode(derived)))
    return MultiFernet(fernets)


def _fernet() -> MultiFernet:
    return _fernet_for(tuple(oauth_settings.KEY_ENCRYPTION_KEYS))


def public_jwk(private_key: Any, kid: str, algorithm: str) -> dict[str, str]:
    """The public members of a key as a JWK (RFC 7517/7518)."""
    public = private_key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        return {
            "kty": "RSA",
            "kid": kid,
            "use": "sig",
            "alg": algorithm,
            "n": _int_b64(numbers.n),
            "e": _int_b64(numbers.e),
        }
    numbers = public.public_numbers()
    return {
        "kty": "EC",
        "kid": kid,
        "use": "sig",
        "alg": algorithm,
        "crv": "P-256",
        "x": _int_b64(numbers.x, 32),
        "y": _int_b64(numbers.y, 32),
    }


def _generate(algorithm: str) -> Any:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=oauth_settings.RSA_KEY_SIZE)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    raise ImproperlyConfigured(
        f"OAUTH_SIGNING_ALG must be one of {', '.join(SUPPORTED_ALGORITHMS)}, not {algorithm!r}"
    )


def create_signing_key(algorithm: str | None = None) -> SigningKey:
    """Generate and store a new key. It becomes current (the newest unretired key)."""
    algorithm = algorithm or oauth_settings.SIGNING_ALG
    private_key = _generate(algorithm)
    kid = b64url(secrets.token_bytes(12))
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return SigningKey.objects.create(
        kid=kid,
        algorithm=algorithm,
        private_key_encrypted=_fernet().encrypt(pem).decode("ascii"),
        public_jwk=public_jwk(private_key, kid, algorithm),
    )


def current_signing_key() -> SigningKey | None:
    return SigningKey.objects.filter(retire_time__isnull=True).order_by("-create_time").first()


def ensure_signing_key() -> SigningKey:
    """The current key, created on first start when there is none."""
    key = current_signing_key()
    if key is None:
        with transaction.atomic():
            key = current_signing_key() or create_signing_key()
    return key


def retention() -> timedelta:
    """How long a retired key stays published: the longest token lifetime plus a JWKS cache."""
    return timedelta(seconds=oauth_settings.TOKEN_EXPIRY_MAX + oauth_settings.JWKS_MAX_AGE + 60)


@transaction.atomic
def rotate_signing_key(
    *, algorithm: str | None = None, if_older_than: timedelta | None = None
) -> SigningKey | None:
    """Make a new key current and retire the others (still published until their tokens expire).

    With ``if_older_than``, rotate only when the current key is at least that old; returns None
    when nothing was done.
    """
    now = timezone.now()
    current = current_signing_key()
    if if_older_than is not None and current and now - current.create_time < if_older_than:
        return None
    new_key = create_signing_key(algorithm)
    SigningKey.objects.filter(retire_time__isnull=True).exclude(kid=new_key.kid).update(
        retire_time=now, unpublish_time=now + retention()
    )
    return new_key


@transaction.atomic
def signing_key_rotate(
    *, actor: Actor, algorithm: str | None = None, if_older_than: timedelta | None = None
) -> SigningKey | None:
    """Rotate (see ``rotate_signing_key``), prune keys no token needs, and audit it.

    The one door for a rotation: the ``rotate_signing_key`` command and the admin call it.
    Returns None when the key was young enough.
    """
    key = rotate_signing_key(algorithm=algorithm, if_older_than=if_older_than)
    pruned = prune_unpublished_keys()
    if key is None:
        return None
    audit_signing_key(
        actor, "signing_key.rotate", key.kid, details={"algorithm": key.algorithm, "pruned": pruned}
    )
    return key


@transaction.atomic
def signing_key_withdraw(*, actor: Actor, key: SigningKey) -> SigningKey | None:
    """Stop trusting a (leaked) key now: unpublish it at once, rotating first if it is current.

    Every token it signed, genuine or forged, fails verification once verifiers refresh their
    JWKS. Returns the new current key when the withdrawn one was current, else None.
    """
    replacement = None
    current = current_signing_key()
    if current is not None and current.kid == key.kid:
        replacement = rotate_signing_key(algorithm=key.algorithm)
    now = timezone.now()
    SigningKey.objects.filter(kid=key.kid).update(
        retire_time=key.retire_time or now, unpublish_time=now
    )
    with _lock:
        _loaded.pop(key.kid, None)
    audit_signing_key(
        actor,
        "signing_key.withdraw",
        key.kid,
        details={"replacement": replacement.kid if replacement else None},
    )
    return replacement


def published_keys() -> list[SigningKey]:
    now = timezone.now()
    return list(
        SigningKey.objects.filter(Q(unpublish_time__isnull=True) | Q(unpublish_time__gt=now))
        .order_by("-create_time")
        .only("kid", "public_jwk", "create_time")
    )


def jwks_document() -> dict[str, list[dict[str, str]]]:
    """The JWKS, as published at /.well-known/jwks.json (public members only)."""
    ensure_signing_key()
    return {"keys": [key.public_jwk for key in published_keys()]}


def prune_unpublished_keys() -> int:
    """Delete keys whose tokens have all expired; their private halves are of no further use."""
    deleted, _ = SigningKey.objects.filter(unpublish_time__lte=timezone.now()).delete()
    return deleted


# --- Loaded keys (per process) -------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedKey:
    """A private key parsed once, with its JWS header segment precomputed."""

    kid: str
    algorithm: str
    private_key: Any
    header_segment: bytes

    def sign(self, signing_input: bytes) -> bytes:
        if self.algorithm == "RS256":
            return self.private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        der = self.private_key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def encode(self, claims: dict[str, Any]) -> str:
        """A compact JWS of ``claims`` signed with this key."""
        payload = b64url(compact_json(claims)).encode()
        signing_input = self.header_segment + b"." + payload
        return (signing_input + b"." + b64url(self.sign(signing_input)).encode()).decode("ascii")


_loaded: dict[str, LoadedKey] = {}
_lock = threading.Lock()


def decrypt_private_key(key: SigningKey) -> Any:
    try:
        pem = _fernet().decrypt(key.private_key_encrypted.encode("ascii"))
    except InvalidToken as exc:
        raise SigningKeyDecryptionError(
            f"Signing key {key.kid} cannot be decrypted with OAUTH_KEY_ENCRYPTION_KEYS (or "
            "SECRET_KEY when that is unset). Restore the key-encryption secret the key was "
            "stored with, or add it to OAUTH_KEY_ENCRYPTION_KEYS."
        ) from exc
    return serialization.load_pem_private_key(pem, password=None)


def load_key(key: SigningKey) -> LoadedKey:
    """Parse (once per process) and return the key ready to sign."""
    loaded = _loaded.get(key.kid)
    if loaded is None:
        with _lock:
            loaded = _loaded.get(key.kid)
            if loaded is None:
                header = {"alg": key.algorithm, "kid": key.kid, "typ": "at+jwt"}
                loaded = LoadedKey(
                    kid=key.kid,
                    algorithm=key.algorithm,
                    private_key=decrypt_private_key(key),
                    header_segment=b64url(compact_json(header)).encode(),
                )
                _loaded[key.kid] = loaded
    return loaded


def loaded_key_by_kid(kid: str) -> LoadedKey:
    loaded = _loaded.get(kid)
    if loaded is None:
        loaded = load_key(SigningKey.objects.get(kid=kid))
    return loaded


def current_loaded_key() -> LoadedKey:
    return load_key(ensure_signing_key())


def check_keys_decrypt() -> None:
    """Decrypt every stored key once, so that a wrong key-encryption secret stops start-up."""
    for key in SigningKey.objects.filter(
        Q(unpublish_time__isnull=True) | Q(unpublish_time__gt=timezone.now())
    ):
        load_key(key)
