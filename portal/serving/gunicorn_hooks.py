"""Gunicorn server hooks for Prometheus multiprocess mode (imported by gunicorn.conf.py).

With ``PROMETHEUS_MULTIPROC_DIR`` set, every worker writes its counters to memory-mapped
files in that directory and ``/metrics`` adds them up. The directory must be dedicated
to one gunicorn master; its files from a previous run are removed at start, since a
counter restarting at zero is what Prometheus expects from a restart.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

# gunicorn's names for its ASGI worker; every other worker class calls a WSGI application.
ASGI_WORKERS = ("asgi", "gunicorn.workers.gasgi.ASGIWorker")


class WorkerMismatch(SystemExit):
    """The worker class the operator chose cannot call the application given: do not start."""


def on_starting(server: Any) -> None:
    """Keep a socket per worker to TCP listeners (below); create the metrics directory, or
    empty it of the previous run's files."""
    listen_per_worker_only_on_tcp(server)
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def app_kind(app_uri: str) -> str | None:
    """``"asgi"`` or ``"wsgi"`` when an application path says which it is by Django's
    convention (``portal.asgi:application``, ``portal.wsgi``), else None. Decided from the name:
    the master must not import Django before it forks; the worker checks the application
    itself (``app_fits_worker``)."""
    module = app_uri.split(":", 1)[0].rsplit(".", 1)[-1]
    return module if module in ("asgi", "wsgi") else None


def serve_with_the_worker_of_the_app(server: Any, *, adaptable: str | None) -> None:
    """Make the worker class fit the application given on the command line, or stop.

    ``gunicorn portal.wsgi`` (the command of Django's deployment guide) reads gunicorn.conf.py
    from the working directory, whose default worker is ``asgi``: an ASGI worker calling a WSGI
    application answers 500 to every request. When the worker class is still the configuration
    file's default (``adaptable``), it is changed to the one the application needs (``gthread``
    for WSGI, ``asgi`` for ASGI). When the operator chose it (``-k``, ``GUNICORN_WORKER_CLASS``),
    the server refuses to start with a message saying what to change.
    """
    app_uri = getattr(server.app, "app_uri", None)
    if not app_uri:
        return
    kind = app_kind(app_uri)
    if kind is None:
        return  # the worker finds out (app_fits_worker)
    cfg = server.cfg
    wants_asgi = kind == "asgi"
    current = cfg.worker_class_str
    if wants_asgi == (current in ASGI_WORKERS):
        return
    if adaptable is None or current != adaptable:
        needed = "asgi" if wants_asgi else "gthread"
        kind = "an ASGI" if wants_asgi else "a WSGI"
        message = (
            f"refusing to start: {app_uri} is {kind} application and the worker class "
            f"{current!r} cannot serve it; use --worker-class {needed} "
            f"(or GUNICORN_WORKER_CLASS={needed})"
        )
        server.log.critical(message)
        raise WorkerMismatch(message)
    if wants_asgi:
        cfg.set("worker_class", "asgi")
        cfg.set("threads", 1)
    else:
        cfg.set("worker_class", "gthread")
        cfg.set("threads", int(os.environ.get("GUNICORN_THREADS", "4")))
        if "GUNICORN_REUSE_PORT" not in os.environ:
            cfg.set("reuse_port", False)  # one shared socket, as gthread is measured with
    server.worker_class = cfg.worker_class
    server.log.info(
        "%s is %s application: serving it with the %s worker",
        app_uri,
        "an ASGI" if wants_asgi else "a WSGI",
        cfg.worker_class_str,
    )


def app_fits_worker(worker: Any) -> str | None:
    """Why this worker cannot call its application (None when it can): the last check, in the
    worker, for an application whose path did not tell (``serve_with_the_worker_of_the_app``)."""
    from gunicorn.workers.gasgi import ASGIWorker

    asgi_worker = isinstance(worker, ASGIWorker)
    app = worker.asgi if asgi_worker else worker.wsgi
    app_is_async = inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(
        type(app).__call__
    )
    if asgi_worker == app_is_async:
        return None
    if asgi_worker:
        return "the asgi worker was given a WSGI application; use --worker-class gthread"
    return "a WSGI worker was given an ASGI application; use --worker-class asgi"


def on_reload(server: Any) -> None:
    """A reload reads gunicorn.conf.py again: the same check as at start, before new workers."""
    listen_per_worker_only_on_tcp(server)


def listen_per_worker_only_on_tcp(server: Any) -> None:
    """Turn ``reuse_port`` off unless every address is TCP and gunicorn makes its own sockets.

    With ``reuse_port`` each worker binds its own socket. On a Unix socket path, each worker
    would remove the previous worker's socket file and bind its own, leaving only the last worker
    reachable; sockets handed over by systemd (LISTEN_FDS), by a re-executing master
    (GUNICORN_FD) or by ``fd://`` would be ignored for new ones. The final addresses (the command
    line's ``--bind`` included) are only known here, not in gunicorn.conf.py.
    """
    cfg = server.cfg
    if not cfg.reuse_port:
        return
    inherited = os.environ.get("LISTEN_FDS") or os.environ.get("GUNICORN_FD")
    if inherited or not all(isinstance(address, tuple) for address in cfg.address):
        cfg.set("reuse_port", False)
        server.log.info("reuse_port off: a listener is not a TCP address gunicorn binds itself")


def child_exit(server: Any, worker: Any) -> None:
    """Tell prometheus_client a worker is gone, so its live gauges stop being reported."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server: Any, worker: Any) -> None:
    """Write the worker's last token counts (at most a minute's) before it goes."""
    # Imported here: gunicorn.conf.py imports this module in the master, before Django is set
    # up, and oauth.stats imports models.
    from oauth import stats

    stats.flush()
