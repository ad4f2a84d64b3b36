"""Token-endpoint instrumentation: Prometheus counters, a latency histogram, the key-age gauge.

Everything the token endpoint reports goes through the few functions here, so the
view (or any faster path in front of it) adds one line per event. Counters live in
memory, or with ``PROMETHEUS_MULTIPROC_DIR`` in per-process memory-mapped files that
``/metrics`` adds up across gunicorn workers; recording never touches the database.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from clients import outbox
from oauth import keys, stats

TOKENS_ISSUED = Counter(
    "oauth_tokens_issued", "Access tokens issued by the token endpoint.", ["auth_method"]
)
TOKEN_FAILURES = Counter(
    "oauth_token_failures",
    "Token requests refused, by OAuth error code (RFC 6749 section 5.2).",
    ["reason"],
)
QUOTA_REFUSALS = Counter(
    "oauth_quota_refusals",
    "Token requests refused by a token quota (HTTP 429), by organization.",
    ["organization"],
)
TOKEN_SECONDS = Histogram(
    "oauth_token_request_seconds",
    "Time spent answering a token request, successful or not.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


# Only a presented client_id of our own shape is logged: a caller who pastes a secret into
# the client_id field must not find it in our logs.
_CLIENT_ID_SHAPE = re.compile(r"(?:m2morg|skc)_[0-9]{1,40}")


def loggable_client_id(client_id: str) -> str | None:
    """The presented client_id when it looks like one of ours, else None (never log it)."""
    return client_id if _CLIENT_ID_SHAPE.fullmatch(client_id) else None


# A labelled child is looked up once per label value (``labels()`` validates and locks on every
# call); there are a handful of methods and error codes, and children are never removed.
@functools.cache
def _issued(auth_method: str) -> Counter:
    return TOKENS_ISSUED.labels(auth_method=auth_method)


@functools.cache
def _failed(reason: str) -> Counter:
    return TOKEN_FAILURES.labels(reason=reason)


def record_token_issued(
    auth_method: str, client_id: str | None = None, organization_id: str | None = None
) -> None:
    """Count an issued token under its client authentication method (and, for the usage
    pages, against its client: in memory, flushed once a minute)."""
    _issued(auth_method).inc()
    stats.record_issued(client_id, organization_id)


def record_token_failure(
    reason: str,
    client_id: str | None = None,
    organization_id: str | None = None,
    usage_reason: str | None = None,
) -> None:
    """Count a refused token request under its OAuth error code (``invalid_client``…), and
    against the client it names under ``usage_reason`` (``rate_limited``, ``quota_exceeded``:
    refusals the error code alone does not tell apart)."""
    _failed(reason).inc()
    stats.record_failed(usage_reason or reason, client_id, organization_id)


@functools.cache
def _quota_refused(organization_id: str) -> Counter:
    return QUOTA_REFUSALS.labels(organization=organization_id)


def record_quota_refusal(organization_id: str) -> None:
    """Count a token request refused by a quota, per organization (never per client: the
    label's values stay as few as the organizations)."""
    _quota_refused(organization_id or "").inc()


def observe_token_seconds(seconds: float) -> None:
    """Record a token request's duration in ``oauth_token_request_seconds``."""
    TOKEN_SECONDS.observe(seconds)


@contextmanager
def token_timer() -> Iterator[None]:
    """Observe the enclosed block's duration in ``oauth_token_request_seconds``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        observe_token_seconds(time.perf_counter() - start)


def timed(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorate the token view so that every request is timed."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with token_timer():
            return view(request, *args, **kwargs)

    return wrapper


class SigningKeyAgeCollector(Collector):
    """``signing_key_age_seconds``: the current key's age, read from the database at scrape time.

    Computed on demand rather than stored in a gauge so that every worker (and every
    server) reports the same figure, right after a rotation done anywhere.
    """

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "signing_key_age_seconds", "Age of the current token signing key, in seconds."
        )
        try:
            key = keys.current_signing_key()
        except DatabaseError:
            key = None  # /readyz reports the database; the other metrics still answer
        if key is not None:
            gauge.add_metric([], (timezone.now() - key.create_time).total_seconds())
        yield gauge


class OutboxAgeCollector(Collector):
    """``outbox_oldest_pending_age_seconds``: how long the oldest waiting outbox task (a mail, a
    webhook delivery) has waited, read from the database at scrape time; a growing figure
    means the workers are down or behind."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "outbox_oldest_pending_age_seconds",
            "Seconds since the oldest pending outbox task was written (0: none waits).",
        )
        with suppress(DatabaseError):  # /readyz reports the database
            gauge.add_metric([], outbox.oldest_pending_age())
        yield gauge
