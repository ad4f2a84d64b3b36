from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from clients import webhooks
from portal.serving.worker import Worker


class Command(BaseCommand):
    help = (
        "Deliver webhooks (outbox kind webhook.deliver) until SIGTERM or Ctrl-C: the outbox "
        "worker limited to webhooks, so that deliveries (up to 10 s each) scale apart from "
        "mails. Any number may run at once, on any machine sharing the database (PostgreSQL "
        "FOR UPDATE SKIP LOCKED). --once delivers what is due now and exits."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="run what is due now, then exit")
        parser.add_argument(
            "--interval", type=float, default=1.0, help="seconds between looks when idle"
        )
        parser.add_argument("--batch", type=int, default=1, help="tasks claimed at a time")

    def handle(self, *args: Any, once: bool, interval: float, batch: int, **options: Any) -> None:
        worker = Worker(interval=interval, batch=batch, kinds=[webhooks.DELIVER_KIND])
        if not once:
            worker.install_signal_handlers()
        worker.run(once=once)
        self.stdout.write(f"webhooks: {worker.done} done, {worker.failed} failed")
