"""Gunicorn settings: ``gunicorn portal.wsgi -c gunicorn.conf.py``.

Metrics in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``): the hooks below clear
stale files at start and retire a worker's gauges when it exits.
"""

from portal.gunicorn_hooks import child_exit, on_starting, worker_exit  # noqa: F401 (gunicorn hooks)
