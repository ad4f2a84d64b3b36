"""The outbox worker (``manage.py run_worker``): runs background tasks until told to stop.

It claims due tasks (``clients.outbox.claim``: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
any number of workers on any number of machines share the queue), runs each one's handler and
records the outcome (done, or retried with exponential backoff and jitter, dead after eight
attempts). With nothing due it sleeps ``interval`` seconds between looks.

SIGTERM or SIGINT (Ctrl-C) stops it gracefully: the task under way finishes and is recorded, no
new one is claimed. A worker killed outright loses nothing either: its claimed tasks run again
once their lease ends. ``once`` runs what is due now and returns (tests, cron).
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from django.db import close_old_connections

from clients import outbox

logger = logging.getLogger(__name__)


class Worker:
    def __init__(
        self, *, interval: float = 1.0, batch: int = 10, kinds: list[str] | None = None
    ) -> None:
        self.interval = interval
        self.kinds = kinds  # None: every kind
        self.batch = batch
        self._stopping = threading.Event()
        self.done = 0
        self.failed = 0

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        """Finish the task under way, then return from ``run`` (a signal handler)."""
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run_due(self) -> int:
        """Run every task due now, batch after batch; how many ran (done or failed).

        A failed task is due again only after its backoff, so this always ends.
        """
        ran = 0
        while not self._stopping.is_set():
            tasks = outbox.claim(self.batch, kinds=self.kinds)
            if not tasks:
                break
            for task in tasks:
                if outbox.run(task):
                    self.done += 1
                else:
                    self.failed += 1
                ran += 1
                if self._stopping.is_set():
                    # The rest of this batch is claimed, not run: their lease ends and another
                    # worker (or this one, restarted) runs them.
                    break
        return ran

    def run(self, *, once: bool = False) -> None:
        kinds = self.kinds if self.kinds is not None else outbox.registered_kinds()
        logger.info("outbox worker started (kinds: %s)", ", ".join(kinds))
        while not self._stopping.is_set():
            if not once:
                # A long-lived process: drop a connection the database closed or that is too
                # old (CONN_MAX_AGE), as Django does between requests.
                close_old_connections()
            try:
                self.run_due()
            except Exception:  # the database went away: log, wait, look again
                logger.exception("outbox worker: claiming tasks failed")
                if once:
                    raise
            if once:
                break
            self._stopping.wait(self.interval)
        logger.info("outbox worker stopped (%d done, %d failed)", self.done, self.failed)
