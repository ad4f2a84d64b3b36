"""GitHub's secret scanning partner program: GitHub finds one of our secrets in a public
repository, gist, issue or npm package and POSTs the match to us within seconds.

The protocol, as GitHub documents it ("Secret scanning partner program",
https://docs.github.com/en/code-security/secret-scanning/secret-scanning-partnership-program/secret-scanning-partner-program):

- the body is a JSON array of matches ``{"token", "type", "url", "source"}``;
- ``Github-Public-Key-Identifier`` names the key and ``Github-Public-Key-Signature`` is the
  base64 of an ASN.1 DER ECDSA P-256 signature with SHA-256 over the raw body;
- the keys are published at https://api.github.com/meta/public_keys/secret_scanning as
  ``{"public_keys": [{"key_identifier", "key": <PEM>, "is_current"}]}``;
- the answer (optional feedback) is a JSON array of
  ``{"token_hash": <SHA-256 hex of the token>, "token_type", "label"}`` with ``label``
  ``true_positive`` or ``false_positive``.

The keys are fetched through the one safe fetcher (``portal.lib.outbound``), kept in Django's
cache for ``GITHUB_SECRET_SCANNING_KEYS_TTL`` seconds, and fetched again when an alert names a
key we do not know, at most once per ``GITHUB_SECRET_SCANNING_REFETCH_SECONDS`` (so unsigned
junk cannot make us hammer GitHub).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.cache import cache

from portal.lib import outbound

logger = logging.getLogger(__name__)

DEFAULT_KEYS_URL = "https://api.github.com/meta/public_keys/secret_scanning"
_KEYS_CACHE_KEY = "m2m:secret-scanning:github-keys"
_REFETCH_CACHE_KEY = "m2m:secret-scanning:github-refetch"
MAX_MATCHES = 1000
MAX_FIELD = 4096


class SignatureRejected(Exception):
    """The alert is not signed by one of GitHub's keys (401); ``str()`` says why."""


class MalformedAlert(Exception):
    """A signed body that is not GitHub's array of matches (400)."""


@dataclass(frozen=True)
class Match:
    token: str
    type: str
    url: str
    source: str


def keys_url() -> str:
    return getattr(settings, "GITHUB_SECRET_SCANNING_KEYS_URL", DEFAULT_KEYS_URL)


def forget_keys() -> None:
    """Drop the cached keys and the refetch throttle (tests, and after GitHub rotates)."""
    cache.delete_many([_KEYS_CACHE_KEY, _REFETCH_CACHE_KEY])


def _fetch_keys() -> dict[str, str]:
    """GitHub's keys by identifier (PEM), fetched through the safe fetcher."""
    url = keys_url()
    document, _headers = outbound.fetch_json(url)
    entries = document.get("public_keys")
    if not isinstance(entries, list):
        raise outbound.OutboundRefused(f"{url} has no public_keys list")
    keys = {
        entry["key_identifier"]: entry["key"]
        for entry in entries
        if isinstance(entry, dict)
        and isinstance(entry.get("key_identifier"), str)
        and isinstance(entry.get("key"), str)
    }
    return keys


def _keys(key_id: str) -> dict[str, str]:
    """The cached keys; fetched when none are cached or ``key_id`` is unknown, at most once per
    throttle window (a failed fetch counts too: unsigned junk cannot make us hammer GitHub)."""
    keys = cache.get(_KEYS_CACHE_KEY)
    if keys is not None and key_id in keys:
        return keys
    throttle = int(getattr(settings, "GITHUB_SECRET_SCANNING_REFETCH_SECONDS", 60))
    # cache.add is atomic: of many alerts with unknown key ids, one fetches per window.
    if not cache.add(_REFETCH_CACHE_KEY, 1, timeout=throttle):
        return keys or {}
    try:
        fresh = _fetch_keys()
    except outbound.OutboundRefused as exc:
        logger.warning("secret scanning: cannot fetch GitHub's keys: %s", exc)
        return keys or {}
    ttl = int(getattr(settings, "GITHUB_SECRET_SCANNING_KEYS_TTL", 3600))
    cache.set(_KEYS_CACHE_KEY, fresh, timeout=ttl)
    if keys is None:
        # A first fetch that worked is no refetch: a key GitHub rotates in right after it
        # may still be fetched.
        cache.delete(_REFETCH_CACHE_KEY)
    return fresh


def verify_signature(body: bytes, key_id: str | None, signature: str | None) -> None:
    """Check the alert's signature; ``SignatureRejected`` when it is missing, names an unknown
    key, or does not verify (ECDSA P-256, SHA-256, over the raw body)."""
    if not key_id or not signature:
        raise SignatureRejected("the alert is not signed")
    if len(key_id) > 256 or len(signature) > 512:
        raise SignatureRejected("the signature headers are malformed")
    try:
        der = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRejected("the signature is not base64") from None
    pem = _keys(key_id).get(key_id)
    if pem is None:
        raise SignatureRejected("the key identifier is unknown")
    try:
        public_key = serialization.load_pem_public_key(pem.encode())
    except ValueError:
        raise SignatureRejected("the published key cannot be read") from None
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise SignatureRejected("the published key is not an ECDSA P-256 key")
    try:
        public_key.verify(der, body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise SignatureRejected("the signature does not verify") from None


def _text(item: dict[str, Any], name: str, required: bool) -> str:
    value = item.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value) or len(value) > MAX_FIELD:
        raise MalformedAlert(f"each match needs a string {name!r}")
    return value


def parse_matches(body: bytes) -> list[Match]:
    """GitHub's array of matches, checked strictly."""
    try:
        document = json.loads(body)
    except ValueError:
        raise MalformedAlert("the body is not JSON") from None
    if not isinstance(document, list) or not document:
        raise MalformedAlert("the body must be a non-empty JSON array of matches")
    if len(document) > MAX_MATCHES:
        raise MalformedAlert(f"at most {MAX_MATCHES} matches per alert")
    matches = []
    for item in document:
        if not isinstance(item, dict):
            raise MalformedAlert("each match must be a JSON object")
        matches.append(
            Match(
                token=_text(item, "token", True),
                type=_text(item, "type", False),
                url=_text(item, "url", False),
                source=_text(item, "source", False),
            )
        )
    return matches


def feedback(match: Match, label: str) -> dict[str, str]:
    """One entry of the answer: the token's SHA-256 (never the token itself), type, label."""
    return {
        "token_hash": hashlib.sha256(match.token.encode()).hexdigest(),
        "token_type": match.type,
        "label": label,
    }
