"""GET /metrics: Prometheus text format, behind a bearer token.

The endpoint answers 404 unless ``METRICS_BEARER_TOKEN`` is set, so a server that
nobody scrapes shows nothing. With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn), each
scrape adds up the figures of every worker from their memory-mapped files; without
it (runserver, tests) the process's own registry is exported.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from prometheus_client import REGISTRY, CollectorRegistry, Counter
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from oauth.metrics import OutboxAgeCollector, SigningKeyAgeCollector

API_PREFIX = "/api/v1/"

API_REQUESTS = Counter(
    "api_requests", "Requests to the management API (/api/v1), by HTTP status.", ["status"]
)


def record_api_request(path: str, status: int) -> None:
    """Count a finished request when it was one to the management API."""
    if path.startswith(API_PREFIX) or path == API_PREFIX.rstrip("/"):
        API_REQUESTS.labels(status=str(status)).inc()


class _Scrape(Collector):
    """What one scrape exports: the counters (this process's or all workers') and live gauges."""

    def __init__(self, sources: Iterable[Collector | CollectorRegistry]) -> None:
        self.sources = list(sources)

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source.collect()


def scrape_collector() -> Collector:
    """Everything one scrape exports."""
    multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if multiproc_dir:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=multiproc_dir)
        counters: Collector | CollectorRegistry = registry
    else:
        counters = REGISTRY
    return _Scrape([counters, SigningKeyAgeCollector(), OutboxAgeCollector()])


def _authorized(request: HttpRequest, expected: str) -> bool:
    scheme, _, presented = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Constant time, so the comparison does not tell how much of a guess was right.
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


def metrics(request: HttpRequest) -> HttpResponse:
    """GET /metrics, for Prometheus (``authorization: credentials: …`` in its scrape config)."""
    expected = getattr(settings, "METRICS_BEARER_TOKEN", None)
    if not expected:
        raise Http404("metrics are not enabled")
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse(
            {"error": "method_not_allowed", "error_description": "use GET"}, status=405
        )
        response["Allow"] = "GET, HEAD"
        return response
    if not _authorized(request, expected):
        response = JsonResponse(
            {"error": "invalid_token", "error_description": "a valid bearer token is required"},
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        response["Cache-Control"] = "no-store"
        return response
    # Prometheus text format 0.0.4 unless the scraper asks for OpenMetrics or text 1.0.
    encode, content_type = choose_encoder(request.META.get("HTTP_ACCEPT", ""))
    response = HttpResponse(encode(scrape_collector()), content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
