"""The authorization server's knobs and their defaults, read from ``settings.OAUTH``.

``oauth_settings.X`` answers for the domain's knobs too (``clients.conf``), so code in this
package reads every OAuth setting the same way.
"""

from __future__ import annotations

from django.conf import settings

from clients.conf import client_settings
from portal.lib.conf import AppSettings

oauth_settings = AppSettings(
    "OAUTH",
    {
        # "RS256" (what the guide's verifiers expect) or "ES256".
        "SIGNING_ALG": "RS256",
        "RSA_KEY_SIZE": 2048,
        # Secrets that encrypt the signing keys at rest; the first encrypts, all decrypt.
        "KEY_ENCRYPTION_KEYS": lambda conf: [settings.SECRET_KEY],
        # The longest lifetime (exp - now, seconds) a client assertion may have; each jti is
        # remembered that long. One hour is what common client libraries sign by default.
        "ASSERTION_MAX_LIFETIME": 3600,
        # Cache-Control max-age of the JWKS; a retired key stays published this much longer.
        "JWKS_MAX_AGE": 300,
        # Seconds of clock skew allowed past a token's exp (and before its nbf) by every reader of
        # our own tokens: introspection and the management API.
        "TOKEN_LEEWAY_SECONDS": 5,
        # Verified secrets are remembered in-process for this long (HMAC-keyed).
        "SECRET_CACHE_SECONDS": 300,
        # last_used_time is written at most this often per secret (never on every token).
        "LAST_USED_RESOLUTION_SECONDS": 60,
        # Workload identity federation (oauth.federation): accept each external token (its iss
        # and jti) once, remembering it until it expires. Off: CI systems reuse theirs until exp.
        "FEDERATION_SINGLE_USE": False,
        # An external token whose kid the cached keys lack fetches the issuer's keys again at
        # most this often (seconds), as the kit does: unknown kids cannot make us hammer it.
        "FEDERATION_REFETCH_SECONDS": 60,
        # Serve POST /oauth/token from the fast path in front of Django (portal.serving.fastpath).
        "TOKEN_FAST_PATH": True,
        # PostgreSQL under the asgi worker: token requests waiting together share one query.
        "TOKEN_QUERY_BATCHING": True,
        # Seconds the token path waits for its query (connecting included) before answering 503
        # with Retry-After; PostgreSQL's statement_timeout on the token path's connections.
        "TOKEN_DATABASE_TIMEOUT": 2,
        # DPoP (RFC 9449, oauth.dpop): a proof's iat may be this many seconds old (and its jti
        # is remembered that long in the shared replay store).
        "DPOP_IAT_WINDOW": 60,
        # Require a server nonce in every DPoP proof (RFC 9449 §8); each nonce is accepted for
        # one to two periods of DPOP_NONCE_SECONDS, by every server process.
        "DPOP_NONCE_REQUIRED": False,
        "DPOP_NONCE_SECONDS": 300,
        # Days of per-client hourly token counts kept (oauth.stats; purge_expired removes older).
        "TOKEN_USAGE_RETENTION_DAYS": 90,
    },
    fallback=client_settings,
)
