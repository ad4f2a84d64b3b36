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
    """Create the metrics directory, or empty it of the previous run's files."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """Tell prometheus_client a worker is gone, so its live gauges stop being reported."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server: Any, worker: Any) -> None:
    """Write the worker's last token counts (at most a minute's) before it goes."""
    from oauth import stats

    stats.flush()
