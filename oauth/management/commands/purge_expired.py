from typing import Any

from django.core.management.base import BaseCommand

from clients import outbox, webhooks
from oauth import stats
from oauth.assertions import purge_used_assertions
from oauth.introspection import purge_revoked_tokens


class Command(BaseCommand):
    help = (
        "Forget revoked tokens and used client-assertion jtis past their expiry (both tables are "
        "also purged on each revocation and assertion), outbox tasks done over a week ago, and "
        "webhook events and their delivery log over 30 days old, "
        "per-client token counts past their retention; "
        "run this from cron."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        revoked = purge_revoked_tokens()
        used = purge_used_assertions()
        tasks = outbox.purge_done()
        events = webhooks.purge_old_events()
        usage_rows = stats.purge_usage()
        self.stdout.write(
            f"purged {revoked} revoked tokens, {used} used assertions, {tasks} done tasks, "
            f"{events} webhook events and {usage_rows} token usage rows (older than "
            "OAUTH_TOKEN_USAGE_RETENTION_DAYS)"
        )
