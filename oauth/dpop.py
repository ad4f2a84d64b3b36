"""DPoP at the token endpoint (RFC 9449 §5): the proof checked, its jti remembered by every
server process, and the optional server nonce (§8).

The proof's rules (§4.3) are the kit's ``m2m_auth_kit.dpop.verify_proof``, which APIs use too;
this module adds what only the authorization server has: its settings, the shared replay store
(``oauth.replay``: Redis, or the database) and nonces. A nonce is an HMAC, under the server's
key, of a time slot of ``DPOP_NONCE_SECONDS``: every process makes and accepts the same nonces
with nothing stored, and one stays good until the end of the next slot.

The token endpoint calls ``token_proof`` only when a request carries a ``DPoP`` header, so a
bearer token request does no work here at all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from m2m_auth_kit.dpop import DPOP_ALGORITHMS, InvalidDPoPProof, UseDPoPNonce, verify_proof
from oauth.replay import remember_once
from oauth.settings import oauth_settings

# The replay store's namespace for proofs (a client_id never has this form: no prefix).
REPLAY_NAMESPACE = "dpop"
NONCE_HEADER = "DPoP-Nonce"
# Clock skew allowed on a proof's iat ahead of ours.
FUTURE_LEEWAY = 5

__all__ = [
    "DPOP_ALGORITHMS",
    "NONCE_HEADER",
    "InvalidDPoPProof",
    "UseDPoPNonce",
    "current_nonce",
    "token_proof",
]


class _SharedReplayStore:
    """The kit's ``ReplayCache`` over the store every server process shares."""

    def remember(self, key: str, ttl: float) -> bool:
        expire_time = datetime.fromtimestamp(time.time() + ttl, UTC)
        return remember_once(REPLAY_NAMESPACE, key, expire_time)


_store = _SharedReplayStore()


def _nonce_for(slot: int) -> str:
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"dpop-nonce:{slot}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode("ascii")


def _slot(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // oauth_settings.DPOP_NONCE_SECONDS)


def current_nonce() -> str:
    """The nonce a client should put in its next proof (sent in ``DPoP-Nonce``)."""
    return _nonce_for(_slot())


def _check_nonce(nonce: Any) -> None:
    slot = _slot()
    if not isinstance(nonce, str) or not any(
        hmac.compare_digest(nonce, _nonce_for(s)) for s in (slot, slot - 1)
    ):
        raise UseDPoPNonce("the DPoP proof must carry the server's current nonce")


def token_proof(proof: str, method: str, uris: tuple[str, ...]) -> str:
    """The thumbprint (``jkt``) of the key of a valid DPoP proof for a token request.

    ``uris``: the request's target URI as received, and the token endpoint we advertise (a
    proxy in front may have rewritten the host or scheme the client saw). Raises
    ``InvalidDPoPProof``, or ``UseDPoPNonce`` when nonces are required and this one is not
    current (the answer then carries ``DPoP-Nonce``: ``nonce_headers``)."""
    return verify_proof(
        proof,
        method=method,
        uris=(*uris, f"{oauth_settings.ISSUER}/oauth/token"),
        replay=_store,
        max_age=oauth_settings.DPOP_IAT_WINDOW,
        leeway=FUTURE_LEEWAY,
        check_nonce=_check_nonce if oauth_settings.DPOP_NONCE_REQUIRED else None,
    ).jkt


def nonce_headers() -> dict[str, str]:
    """``DPoP-Nonce`` for an answer, when nonces are required; else nothing."""
    return {NONCE_HEADER: current_nonce()} if oauth_settings.DPOP_NONCE_REQUIRED else {}
