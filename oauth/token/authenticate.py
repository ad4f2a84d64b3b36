"""Client authentication at the token endpoint (and introspection, revocation): a secret, checked
once per process, or a ``private_key_jwt`` assertion (``oauth.assertions``); attempts limited by
``oauth.ratelimit`` (per address, and per client_id from an address: never per client_id alone).

A secret verified once is remembered per process under an HMAC of the presented value (with a
per-process random key), so argon2 runs once per secret and process; the secret's row is still
read on every request (``oauth.token.lookup``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from typing import Any

from clients.models import check_secret, hash_secret, secret_lookup
from oauth import assertions, federation, ratelimit
from oauth import metrics as token_metrics
from oauth.settings import oauth_settings
from oauth.token.lookup import (
    NEEDS_LOOKUP,
    AuthenticatedClient,
    Prefetched,
    could_be_client_id,
    read_rows,
    record_lookup,
)
from oauth.token.request import (
    Credentials,
    OAuthError,
    assertion_error,
    client_credentials_from,
    could_be_secret,
    invalid_client,
    miswritten_secret,
)

# Per-process memory of verified secrets: HMAC(process key, client_id NUL secret) -> (secret id,
# monotonic deadline). The HMAC key never leaves this process; a wrong secret is never stored.
_CACHE_KEY = os.urandom(32)
_verified: dict[bytes, tuple[str, float]] = {}
_VERIFIED_MAX = 10_000
_cache_lock = threading.Lock()
_dummy_hash: str | None = None


def dummy_check(secret: str) -> None:
    """Spend what a real check costs, so timing does not tell whether a client id exists."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_secret(secrets.token_urlsafe(32))
    check_secret(secret, _dummy_hash)


def verification_key(client_id: str, secret: str) -> bytes:
    """The verification cache's key for these credentials (an HMAC: never the secret itself)."""
    return hmac.new(
        _CACHE_KEY, f"{client_id}\x00{secret}".encode("utf-8", "surrogatepass"), hashlib.sha256
    ).digest()


def recently_verified(key: bytes, ahead: Prefetched | None = None) -> bool:
    """True when this process verified the secret of these credentials (their
    ``verification_key``) for this client and still trusts it; with ``ahead`` (the client's
    rows, read after the request arrived), only if that secret is still among them.

    Such a request will not run argon2, so the rate limiter need not be asked first
    (oauth.ratelimit): a client that keeps presenting its right secret costs nothing extra. A
    secret revoked since it was verified is not among the rows: its request is checked as an
    unknown secret would be (the server sends it to the pool, not the event loop).
    """
    cached = _verified.get(key)
    if cached is None or cached[1] <= time.monotonic():
        return False
    if ahead is None or ahead.rows is None:
        return True
    secret_id = cached[0]
    return any(row[6] == secret_id for row in ahead.rows)


def forget_verified_secrets() -> None:
    """Empty this process's verification cache (tests, and after a mass revocation)."""
    with _cache_lock:
        _verified.clear()


def authenticate_with_secret(
    client_id: str, secret: str, key: bytes | None = None, ahead: Prefetched | None = None
) -> AuthenticatedClient | None:
    """The client when ``secret`` is one of its active, unexpired secrets; None otherwise.

    ``key``: the credentials' ``verification_key`` when the caller has computed it already;
    ``ahead``: the client's rows when the server has read them already (oauth.token.batching)."""
    rows, now, stale, touch = read_rows(client_id, ahead)
    suffix = secret[-4:]
    candidates = [row for row in rows if hmac.compare_digest(row[8], suffix)]
    if not candidates:
        dummy_check(secret)
        return None
    if key is None:
        key = verification_key(client_id, secret)
    cached = _verified.get(key)
    matched = None
    if cached is not None and cached[1] > time.monotonic():
        matched = next((row for row in candidates if row[6] == cached[0]), None)
    if matched is None:
        matched = next((row for row in candidates if check_secret(secret, row[7])), None)
        if matched is None:
            return None
        if matched[NEEDS_LOOKUP]:  # made before keyed lookups: store its lookup now (once)
            record_lookup(matched[6], secret_lookup(secret))
        ttl = oauth_settings.SECRET_CACHE_SECONDS
        if ttl > 0:
            with _cache_lock:
                if len(_verified) >= _VERIFIED_MAX:
                    _verified.clear()
                _verified[key] = (matched[6], time.monotonic() + ttl)
    if matched[9]:
        touch(matched[6], now, stale)
    return AuthenticatedClient.from_row(matched)


def too_many_failures(limited: ratelimit.RateLimited) -> OAuthError:
    """429 for an address, or a client_id from an address, that failed too often (RFC 6749 has
    no code for it; RFC 6585 has 429).

    ``temporarily_unavailable`` rather than ``invalid_client``: the answer is "wait", not "your
    credentials are wrong" (the secret was not even checked).
    """
    return OAuthError(
        "temporarily_unavailable",
        f"too many failed attempts; retry after {limited.retry_after} s",
        status=429,
        headers={"Retry-After": str(limited.retry_after)},
        count_as="rate_limited",
    )


def issuer_unavailable(exc: federation.IssuerUnavailable) -> OAuthError:
    """503: an external token's issuer has no cached keys and cannot be reached; not the
    caller's fault, so it counts as no failure."""
    return OAuthError(
        "temporarily_unavailable",
        f"the external token's issuer cannot be reached; retry after {exc.retry_after} s",
        status=503,
        headers={"Retry-After": str(exc.retry_after)},
    )


def authenticate_client(
    authorization: str | None,
    params: dict[str, list[str]],
    log: dict[str, Any],
    ip: str | None,
    ahead: Prefetched | None = None,
    credentials: Credentials | None = None,
) -> tuple[AuthenticatedClient, str]:
    """The calling client and its method: a secret (Basic or post) or an assertion.

    Raises ``invalid_client`` when authentication fails, and 429 once the address, or this
    client_id from this address, has failed too often (oauth.ratelimit). A credential this
    process has not verified recently first reserves a slot on those limits (and on the
    address's argon2 budget) in one atomic step, and gives the failure slots back when it
    verifies; a recently verified secret does no rate-limit I/O at all. Failures are never
    counted against a client_id alone, so nobody can lock a client out by knowing its id.
    Shared by the token, introspection and revocation endpoints; ``log`` receives the
    access-log fields (never a credential); ``ahead``, the client's rows if the server read
    them already; ``credentials``, what ``client_credentials_from`` answered when the caller
    asked already (oauth.token.request.token_request_of).
    """
    try:
        if credentials is None:
            credentials = client_credentials_from(authorization, params)
        if isinstance(credentials, OAuthError):
            raise credentials
        client_id, credential, method = credentials
    except OAuthError as error:
        if error.error == "invalid_client":
            _count_against_address(ip)  # no credentials: no client to count against
        raise
    presented = token_metrics.loggable_client_id(client_id) if client_id else None
    if presented:
        log["client_id"] = presented
    if method != "private_key_jwt" and not _well_formed(client_id, credential):
        if (
            client_id is not None
            and could_be_client_id(client_id)
            and miswritten_secret(credential)
        ):
            # A malformed secret or a wrong checksum: refused before any lookup, and counted
            # like a wrong secret (per client_id from this address, and per address).
            _count_failure(client_id, ip)
        else:
            _count_against_address(ip)
        raise invalid_client()
    # The verification cache's key, computed once for both questions asked of it below.
    key = verification_key(client_id or "", credential) if method != "private_key_jwt" else None
    reservation = None
    if key is None or not recently_verified(key):
        # Only a request that must verify a credential asks the shared store; a secret this
        # process already verified goes on without a round trip (or building a counter).
        spends = ratelimit.argon2_counters(ip) if key is not None else []
        try:
            reservation = ratelimit.acquire(
                ratelimit.token_failure_counters(client_id, ip) + spends
            )
        except ratelimit.RateLimited as limited:
            raise too_many_failures(limited) from None
    try:
        client = _verified_client(client_id, credential, method, key, ahead)
    except OAuthError as error:
        if error.error != "invalid_client":
            _release(reservation)
        elif reservation is None:  # a cached secret that no longer verifies (revoked)
            ratelimit.hit(ratelimit.token_failure_counters(client_id, ip))
        raise
    except Exception:
        _release(reservation)  # not a failed authentication (the database, say)
        raise
    _release(reservation)
    log["client_id"] = client.client_id
    if client.organization_id:
        log["organization_id"] = client.organization_id
    return client, method


def _well_formed(client_id: str | None, secret: str) -> bool:
    return client_id is not None and could_be_client_id(client_id) and could_be_secret(secret)


def _count_against_address(ip: str | None) -> None:
    """Count a request without usable credentials against its address alone: 429 when the
    address is already over its limit, else the caller raises its own 401."""
    try:
        ratelimit.acquire(ratelimit.token_failure_counters(None, ip))
    except ratelimit.RateLimited as limited:
        raise too_many_failures(limited) from None


def _count_failure(client_id: str, ip: str | None) -> None:
    """Count a failed authentication of ``client_id`` from ``ip`` without checking anything:
    429 when either is already over its limit, else the caller raises its own 401."""
    try:
        ratelimit.acquire(ratelimit.token_failure_counters(client_id, ip))
    except ratelimit.RateLimited as limited:
        raise too_many_failures(limited) from None


def _release(reservation: ratelimit.Reservation | None) -> None:
    if reservation is not None:
        ratelimit.release(reservation)


def _verified_client(
    client_id: str | None,
    credential: str,
    method: str,
    key: bytes | None,
    ahead: Prefetched | None,
) -> AuthenticatedClient:
    if method == "private_key_jwt" and federation.is_external(credential, client_id):
        # RFC 7523 §2.2 with an external workload token: its iss is the workload's issuer.
        try:
            return federation.federated_client(credential, client_id)
        except federation.FederationRejected as exc:
            raise invalid_client(exc.description) from None
        except federation.IssuerUnavailable as exc:
            raise issuer_unavailable(exc) from None
    if method == "private_key_jwt":
        try:
            return assertions.authenticate_with_assertion(credential, client_id)
        except assertions.AssertionRejected as exc:
            raise assertion_error(exc) from exc
    if not _well_formed(client_id, credential):
        raise invalid_client()
    client = authenticate_with_secret(client_id, credential, key, ahead)
    if client is None:
        raise invalid_client()
    return client
