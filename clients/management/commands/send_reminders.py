from typing import Any

from django.core.management.base import BaseCommand

from clients.services import Actor, secret_reminders_send


class Command(BaseCommand):
    help = (
        "Mail the owners and admins of each organization about secrets that expire soon "
        "(14 and 3 days before, OAUTH_SECRET_REMINDER_DAYS): one mail per secret per reminder, "
        "however often it runs. Meant for cron (hourly or daily); the outbox worker sends them."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        count = secret_reminders_send(actor=Actor.system("send_reminders"))
        self.stdout.write(f"{count} reminder(s) enqueued")
