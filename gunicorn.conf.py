"""Gunicorn settings for the production server: ``gunicorn portal.wsgi -c gunicorn.conf.py``.

Every value can be overridden from the environment (``GUNICORN_*``, or ``HOST``/``PORT``).

Why these defaults (measured with ``make bench``/``bench/profile.py`` on a 2-core machine, see
bench/README.md):
- ``gthread``, one worker per core plus one, 4 threads each, keep-alive: the token endpoint is
  CPU-bound (one RSA signature) with one database round trip, so a few threads per process
  overlap that wait, and the extra process keeps the cores busy while the others wait on the
  GIL or on PostgreSQL. Measured at 32 connections with 2 cores: PostgreSQL 607 -> 1,124
  tokens/s and SQLite 1,872 -> 2,138 tokens/s (p99 57 -> 39 ms) going from 2 to 3 workers.
  Gunicorn's ``sync`` worker closes the connection after every answer and waits for the
  client's FIN before taking the next one (gunicorn's ``close_graceful``), which measured 2-3x
  fewer tokens/s at 32 connections.
  Put a proxy (nginx) in front for slow clients.
- Four workers of two threads did no better on PostgreSQL (1,047 tokens/s); more only added
  memory and context switches.
"""

from __future__ import annotations

import multiprocessing
import os
import sys

# Gunicorn reads this file before it puts its working directory on sys.path: make the project
# next to this file the one imported (not another copy an editable install points at).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# Metrics in multiprocess mode (PROMETHEUS_MULTIPROC_DIR): these hooks clear stale files at start
# and retire a worker's gauges when it exits.
from portal.gunicorn_hooks import child_exit, on_starting, worker_exit  # noqa: F401 (hooks)

_cores = multiprocessing.cpu_count()

bind = os.environ.get(
    "GUNICORN_BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
)
workers = int(os.environ.get("GUNICORN_WORKERS", str(_cores + 1)))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# A burst of clients waits in the listen queue instead of being refused.
backlog = int(os.environ.get("GUNICORN_BACKLOG", "2048"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Recycle workers now and then so that a slow leak cannot grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "0"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
# When gunicorn's own access log is on: the path without its query string (%(U)s, not %(r)s),
# since a careless caller may put a client_secret there (tests/ops/test_no_leaks.py).
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s"'
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# Each worker imports the app itself: no database connection or key can leak across a fork.
preload_app = False


def post_worker_init(worker) -> None:
    """Do once per worker, before its first request, what the first token request would do.

    First, every stored signing key must decrypt with the configured key-encryption secrets:
    when one does not, the worker exits with gunicorn's boot-error code (3) and the master stops
    with the reason in the log, instead of serving 500s on every token request.
    """
    from django.apps import apps

    if not apps.is_installed("oauth"):
        return  # another app served from this directory (examples/deployment_api)
    from django.db import DatabaseError

    from oauth.keys import SigningKeyDecryptionError, check_keys_decrypt
    from oauth.wsgi import TokenFastPath

    try:
        check_keys_decrypt()
    except SigningKeyDecryptionError as exc:
        worker.log.critical("refusing to start: %s", exc)
        sys.exit(3)  # gunicorn.arbiter.Arbiter.WORKER_BOOT_ERROR: the master halts
    except DatabaseError:
        worker.log.warning("signing keys not checked: the database is not reachable or migrated")
    app = worker.wsgi  # unwrap the WSGI middlewares of portal/wsgi.py down to the fast path
    while not isinstance(app, TokenFastPath) and hasattr(app, "app"):
        app = app.app
    fast = isinstance(app, TokenFastPath)
    worker.log.info("token endpoint: %s", "WSGI fast path" if fast else "Django view")
    try:
        from oauth.tokens import warm_up

        warm_up()
    except Exception:  # a database not migrated yet must not stop the server from starting
        worker.log.exception("token endpoint warm-up failed; the first request will do it")
