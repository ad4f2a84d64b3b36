"""GET /healthz (the process answers) and GET /readyz (it can serve tokens).

Load balancers and orchestrators call these without credentials, so the answers
name each check and its state and nothing else: no host names, no error messages
(those go to the log).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from oauth import keys
from portal.serving.static_files import check_static_files

logger = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store"}
# A readiness probe must answer within the orchestrator's timeout even when Redis hangs.
REDIS_TIMEOUT_SECONDS = 1.0


def _json(body: dict, status: int = 200) -> HttpResponse:
    response = JsonResponse(body, status=status)
    for name, value in NO_STORE.items():
        response[name] = value
    return response


def _not_allowed() -> HttpResponse:
    response = _json({"error": "method_not_allowed", "error_description": "use GET"}, 405)
    response["Allow"] = "GET, HEAD"
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    """The process is up and answering; depends on nothing else (a liveness probe)."""
    if request.method not in ("GET", "HEAD"):
        return _not_allowed()
    return _json({"status": "ok"})


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_signing_key() -> None:
    """A current key exists and decrypts with the configured key-encryption secrets."""
    key = keys.current_signing_key()
    if key is None:
        raise LookupError("no current signing key (run: python manage.py bootstrap)")
    keys.load_key(key)


@cache
def _redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )


def check_redis() -> None:
    _redis_client(settings.REDIS_URL).ping()


def run_checks() -> dict[str, str]:
    """Each check's state: ``ok``, ``error``, ``skipped`` or ``not_configured``."""
    checks: dict[str, Callable[[], None] | None] = {
        "database": check_database,
        "signing_key": check_signing_key,
        "redis": check_redis if getattr(settings, "REDIS_URL", None) else None,
        # The portal's and admin's pages (the token endpoint does not need it).
        "static_files": check_static_files,
    }
    results: dict[str, str] = {}
    for name, check in checks.items():
        if check is None:
            results[name] = "not_configured"
            continue
        if name == "signing_key" and results["database"] != "ok":
            results[name] = "skipped"  # it lives in the database
            continue
        try:
            check()
        except Exception as exc:
            # The probe answers for every failure; the reason goes to the operator's log only.
            logger.warning(
                "readiness check %s failed: %s", name, type(exc).__name__, extra={"check": name}
            )
            results[name] = "error"
        else:
            results[name] = "ok"
    return results


def readyz(request: HttpRequest) -> HttpResponse:
    """Ready to serve: database reachable, a current signing key loads, Redis when configured,
    the static files collected (with DEBUG off)."""
    if request.method not in ("GET", "HEAD"):
        return _not_allowed()
    results = run_checks()
    ready = all(state in ("ok", "not_configured") for state in results.values())
    return _json(
        {"status": "ready" if ready else "not_ready", "checks": results}, 200 if ready else 503
    )
