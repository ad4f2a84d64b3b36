"""Gunicorn settings for the production server: ``gunicorn -c gunicorn.conf.py``.

Every value can be overridden from the environment (``GUNICORN_*``, ``SERVER_THREADS``, or
``HOST``/``PORT``).

Why these defaults (the figures behind each are in bench/README.md, "Server configuration"):
- gunicorn's ``asgi`` worker serving ``portal.asgi``: an event loop (uvloop) per worker, and
  gunicorn's C HTTP parser (gunicorn-h1c). ``POST /oauth/token`` is answered on the loop
  itself; every other request runs Django in a pool of ``SERVER_THREADS`` threads per worker
  (``portal.serving.bridge``). The threaded WSGI worker spends several times more CPU per request
  on HTTP alone.
- One worker per core under ``asgi``: on PostgreSQL a worker's loop does not wait for the
  database (the token requests waiting together share one query, ``oauth.token.batching``), so
  more workers than cores only add context switches. ``gthread`` keeps one per core plus one.
- ``GUNICORN_WORKER_CLASS=gthread`` (with ``GUNICORN_APP=portal.wsgi``) still works: the same
  WSGI application, token fast path included, under a threaded WSGI worker.
- An application on the command line gets the worker it needs: ``gunicorn portal.wsgi`` (Django's
  deployment guide; gunicorn reads this file from the working directory) runs ``gthread``
  workers, ``gunicorn portal.asgi:application`` the ``asgi`` worker. A worker class chosen with
  ``-k`` or ``GUNICORN_WORKER_CLASS`` that cannot call the application stops the server at start.
- Under ``asgi``, a listening socket per worker (``SO_REUSEPORT``): the kernel spreads connections
  across workers instead of the first worker awake taking a whole burst (see ``reuse_port``).
Put a proxy (nginx) in front for slow clients and TLS.
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
from portal.serving import gunicorn_hooks
from portal.serving.gunicorn_hooks import (  # noqa: F401 (hooks)
    child_exit,
    worker_exit,
)

_cores = multiprocessing.cpu_count()

bind = os.environ.get(
    "GUNICORN_BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
)
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "asgi")
workers = int(
    os.environ.get("GUNICORN_WORKERS", str(_cores if worker_class == "asgi" else _cores + 1))
)
wsgi_app = os.environ.get(
    "GUNICORN_APP", "portal.asgi:application" if worker_class == "asgi" else "portal.wsgi"
)
# "auto" uses gunicorn's C parser (gunicorn-h1c, the "fast" extra) when it is installed; "python"
# and "fast" force one (bench/README.md compares them).
http_parser = os.environ.get("GUNICORN_HTTP_PARSER", "auto")
# Threads of a gthread worker; the asgi worker has its own pool for Django (SERVER_THREADS).
threads = 1 if worker_class == "asgi" else int(os.environ.get("GUNICORN_THREADS", "4"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Under asgi, each worker listens on a socket of its own (SO_REUSEPORT) and the kernel spreads
# new connections across them. On one shared socket, the worker that wakes first accepts a whole
# burst: 32 connections opened at once were split 4/28 (seen 3/29), leaving a core idle on cheap
# requests; with a socket per worker they were split 12/20 to 16/16. Only for TCP addresses that
# gunicorn binds itself (portal.serving.gunicorn_hooks turns it off otherwise). Trade-off: when
# a worker exits (a restart, a reload), connections still waiting in its own accept queue are reset.
reuse_port = os.environ.get(
    "GUNICORN_REUSE_PORT", "true" if worker_class == "asgi" else "false"
).lower() in ("1", "true", "yes", "on")
# A burst of clients waits in the listen queue instead of being refused.
backlog = int(os.environ.get("GUNICORN_BACKLOG", "2048"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Recycle workers now and then so that a slow leak cannot grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "0"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
# When gunicorn's own access log is on: the path without its query string (%(U)s, not %(r)s),
# since a careless caller may put a client_secret there (tests/test_no_leaks.py).
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s"'
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# Each worker imports the app itself: no database connection or key can leak across a fork.
preload_app = False


def _fit_worker_to_app(server) -> None:
    """The worker class for the application on the command line (``gunicorn portal.wsgi`` gets
    ``gthread``), unless the operator chose one (``-k``, ``GUNICORN_WORKER_CLASS``)."""
    chosen = "GUNICORN_WORKER_CLASS" in os.environ
    gunicorn_hooks.serve_with_the_worker_of_the_app(
        server, adaptable=None if chosen else worker_class
    )


def on_starting(server) -> None:
    _fit_worker_to_app(server)
    gunicorn_hooks.on_starting(server)


def on_reload(server) -> None:
    """A reload reads this file again: fit the worker again, before new workers start."""
    _fit_worker_to_app(server)
    gunicorn_hooks.on_reload(server)


def post_worker_init(worker) -> None:
    """Do once per worker, before its first request, what the first token request would do.

    First, every stored signing key must decrypt with the configured key-encryption secrets:
    when one does not, the worker exits with gunicorn's boot-error code (3) and the master stops
    with the reason in the log, instead of serving 500s on every token request.
    """
    mismatch = gunicorn_hooks.app_fits_worker(worker)
    if mismatch:  # an application whose path did not say what it is
        worker.log.critical("refusing to start: %s", mismatch)
        sys.exit(3)  # gunicorn.arbiter.Arbiter.WORKER_BOOT_ERROR: the master halts
    # Imported here: this file is read by the master before Django is set up.
    from django.apps import apps

    if not apps.is_installed("oauth"):
        return  # another app served from this directory (examples/deployment_api)
    from django.db import DatabaseError

    from oauth.keys import SigningKeyDecryptionError, check_keys_decrypt

    try:
        check_keys_decrypt()
    except SigningKeyDecryptionError as exc:
        worker.log.critical("refusing to start: %s", exc)
        sys.exit(3)  # gunicorn.arbiter.Arbiter.WORKER_BOOT_ERROR: the master halts
    except DatabaseError:
        worker.log.warning("signing keys not checked: the database is not reachable or migrated")
    import gc

    from django.db import connections

    from portal import wsgi
    from portal.serving.bridge import AsgiServer

    app = getattr(worker, "asgi", None) or worker.wsgi
    fast = wsgi.fast_path is not None
    worker.log.info("token endpoint: %s", "fast path" if fast else "Django view")
    # Everything loaded so far lives as long as the worker: keep it out of the collector's
    # reach, so that a full collection walks only what requests allocate (shorter pauses).
    gc.freeze()
    if isinstance(app, AsgiServer):
        # The loop thread's token requests keep a connection of their own, and warm up at the
        # ASGI lifespan start (portal.serving.bridge): this one would only sit idle.
        connections.close_all()
        return
    try:
        from oauth.token.endpoint import warm_up

        warm_up()
    except Exception:  # a database not migrated yet must not stop the server from starting
        worker.log.exception("token endpoint warm-up failed; the first request will do it")
