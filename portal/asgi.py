"""ASGI entry point of the production server: ``gunicorn -c gunicorn.conf.py`` runs
``portal.asgi:application`` in gunicorn's ``asgi`` worker (uvloop, and gunicorn's C HTTP parser).

``POST /oauth/token`` is answered on the worker's event loop by the token fast path
(``portal.serving.fastpath``, the same that ``portal.wsgi`` serves): no thread hop, no queue. On
PostgreSQL its rows are read by one query shared with the token requests waiting at the same
time (``oauth.token.batching``), so the loop never waits on the database, and one worker per
core keeps the cores busy. Only a secret this process has verified already is answered there;
every other token request (a secret argon2 must check, an assertion, no usable credentials, rows
the batch could not read) is answered in the pool, so the loop never waits for argon2, the
rate limiter or a client's keys. The body is parsed once, by the endpoint's own parser, to
decide.
Every other request (portal, admin, management API, introspection, revocation) runs Django's
WSGI application in a pool of ``SERVER_THREADS`` threads, as a threaded WSGI server would
(``portal.serving.bridge``).

``portal.wsgi`` stays the entry point for any WSGI server.
"""

from __future__ import annotations

import os
import sys

from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

try:
    import portal.wsgi  # sets Django up, before anything imports a model
except ImproperlyConfigured as exc:
    # A configuration that cannot work (no static files manifest, no SECRET_KEY…) fails the
    # same way on every attempt. uvicorn --workers restarts a worker whose import raised, for
    # ever; exit code 3 is what both uvicorn (STARTUP_FAILURE) and gunicorn (WORKER_BOOT_ERROR)
    # take for "failed to start: stop the server".
    print(exc, file=sys.stderr, flush=True)
    sys.exit(3)
from oauth.token.batching import token_query_batcher
from oauth.token.endpoint import warm_up
from portal.serving.bridge import AsgiServer

application = AsgiServer(
    portal.wsgi.application,
    int(os.environ.get("SERVER_THREADS", "4")),
    fast_path=portal.wsgi.fast_path,
    warm_up=warm_up,
    batcher=token_query_batcher(),
)
