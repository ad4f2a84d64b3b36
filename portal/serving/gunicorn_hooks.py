"""Gunicorn server hooks for Prometheus multiprocess mode (imported by gunicorn.conf.py).

With ``PROMETHEUS_MULTIPROC_DIR`` set, every worker writes its counters to memory-mapped
files in that directory and ``/metrics`` adds them up. The directory must be dedicated
to one gunicorn master; its files from a previous run are removed at start, since a
counter restarting at zero is what Prometheus expects from a restart.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


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
