import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from clients.services import Actor, management_client_create


class Command(BaseCommand):
    help = (
        "Create a client for the management API. Prints "
        '{"client_id": "skc_…", "client_secret": "…"} as JSON on stdout; the secret is shown once.'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--description", default="")

    def handle(self, *args: Any, name: str, description: str, **options: Any) -> None:
        try:
            client, plain = management_client_create(
                actor=Actor.system("create_management_client"), name=name, description=description
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(json.dumps({"client_id": client.id, "client_secret": plain}))
