"""The one store of identifiers that may be used once: the ``jti`` of client assertions
(``oauth.assertions``) and of DPoP proofs (``oauth.dpop``).

``remember_once`` is an atomic insert-if-absent, shared by every server process: in Redis
(``SET NX`` with an expiry) when ``settings.REDIS_URL`` is set, else in the ``UsedAssertion``
table, whose unique constraint makes the second insert fail. Unlike the rate limiter it fails
closed: a store that cannot be reached raises ``DatabaseError`` (a 503 at the token endpoint),
because letting a replay through is worse than asking the client to try again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from oauth.models import UsedAssertion
from oauth.ratelimit import redis_client

REDIS_PREFIX = "m2m:once:"


def remember_once(namespace: str, value: str, expire_time: datetime) -> bool:
    """Record ``value`` under ``namespace`` (at most 32 characters: a client_id, or "dpop")
    until ``expire_time``; False when it is recorded already (a replay)."""
    if settings.REDIS_URL:
        return _redis_remember(namespace, value, expire_time)
    try:
        with transaction.atomic():
            # Rows past their expiry can never match again: drop them here, so the table holds
            # only the last few minutes of identifiers.
            UsedAssertion.objects.filter(expire_time__lte=timezone.now()).delete()
            UsedAssertion.objects.create(jti=value, client_id=namespace, expire_time=expire_time)
    except IntegrityError:
        return False
    return True


def _redis_remember(namespace: str, value: str, expire_time: datetime) -> bool:
    import redis

    seconds = max(1, int((expire_time - datetime.now(UTC)) / timedelta(seconds=1)) + 1)
    try:
        stored = redis_client(settings.REDIS_URL).set(
            f"{REDIS_PREFIX}{namespace}:{value}", b"1", nx=True, ex=seconds
        )
    except redis.RedisError as exc:
        raise DatabaseError(f"the replay store is unavailable: {type(exc).__name__}") from exc
    return bool(stored)
