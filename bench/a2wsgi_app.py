"""The same WSGI application as ``portal.asgi``, bridged by a2wsgi instead of our own bridge, for
``make bench BENCH_BRIDGE=a2wsgi`` (bench/README.md, "Server configuration"). Not part of the
product: a2wsgi is installed by the bench only. Every request, token requests included, runs in
a2wsgi's thread pool; ours answers token requests on the event loop."""

from __future__ import annotations

import os

from a2wsgi import WSGIMiddleware

import portal.wsgi

application = WSGIMiddleware(
    portal.wsgi.application, workers=int(os.environ.get("SERVER_THREADS", "4"))
)
