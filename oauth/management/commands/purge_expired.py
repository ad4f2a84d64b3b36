from typing import Any

from django.core.management.base import BaseCommand

from oauth.assertions import purge_used_assertions
from oauth.introspection import purge_revoked_tokens


class Command(BaseCommand):
    help = (
        "Forget revoked tokens and used client-assertion jtis past their expiry. Both tables are "
        "also purged on each revocation and assertion; run this from cron for quiet periods."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        revoked = purge_revoked_tokens()
        used = purge_used_assertions()
        self.stdout.write(f"purged {revoked} revoked tokens and {used} used assertions")
