from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from portal.serving.worker import Worker


class Command(BaseCommand):
    help = (
        "Run background tasks from the outbox (e-mails, and every kind registered in "
        "clients.outbox) until SIGTERM or Ctrl-C. Any number may run at once, on any machine "
        "sharing the database. --once runs what is due now and exits (tests, cron)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="run what is due now, then exit")
        parser.add_argument(
            "--interval", type=float, default=1.0, help="seconds between looks when idle"
        )
        parser.add_argument("--batch", type=int, default=10, help="tasks claimed at a time")

    def handle(self, *args: Any, once: bool, interval: float, batch: int, **options: Any) -> None:
        worker = Worker(interval=interval, batch=batch)
        if not once:
            worker.install_signal_handlers()
        worker.run(once=once)
        self.stdout.write(f"outbox: {worker.done} done, {worker.failed} failed")
