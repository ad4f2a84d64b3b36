"""``from portal.gunicorn_hooks import …`` in a gunicorn configuration of your own goes on working:
the hooks live in ``portal.serving.gunicorn_hooks``."""

from portal.serving.gunicorn_hooks import (  # noqa: F401
    child_exit,
    on_reload,
    on_starting,
    worker_exit,
)
