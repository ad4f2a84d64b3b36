from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from clients.services import Actor
from oauth import keys


class Command(BaseCommand):
    help = (
        "Make a new signing key current. Older keys stay published until every token they "
        "signed has expired. With --if-older-than DAYS, rotate only a key at least that old "
        "(safe to run from cron)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--if-older-than", type=float, metavar="DAYS", default=None)
        parser.add_argument(
            "--algorithm",
            choices=keys.SUPPORTED_ALGORITHMS,
            default=None,
            help="algorithm of the new key (default: OAUTH_SIGNING_ALG)",
        )

    def handle(
        self, *args: Any, if_older_than: float | None, algorithm: str | None, **options: Any
    ) -> None:
        age = timedelta(days=if_older_than) if if_older_than is not None else None
        key = keys.signing_key_rotate(
            actor=Actor.system("rotate_signing_key"), algorithm=algorithm, if_older_than=age
        )
        if key is None:
            self.stdout.write("current signing key is younger than the threshold; nothing rotated")
            return
        self.stdout.write(f"new current signing key {key.kid} ({key.algorithm})")
