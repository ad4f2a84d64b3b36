from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from clients.models import ApiClient, ApiResource, Organization
from clients.services import (
    Actor,
    api_resource_create,
    management_client_create,
    organization_create,
)
from oauth import keys

DEMO_EXTERNAL_ID = "demo"
DEMO_MANAGEMENT_CLIENT = "Demo management client"

# The guide's API, so that the portal offers its scopes out of the box.
DEMO_API = {
    "audience": "deployment-api.acmecorp.com",
    "name": "Deployment API",
    "description": "Deploy applications and read deployment history",
    "scopes": [
        ("deploy:applications", "Deploy applications to your environments"),
        ("read:deployments", "Read deployments and their status"),
    ],
}


class Command(BaseCommand):
    help = (
        "Make the server ready: a signing key when there is none, and with --demo a demo "
        "organization, the guide's Deployment API in the API catalog, and a demo management "
        "client (each created once; the client's secret is printed then)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--demo", action="store_true")

    def handle(self, *args: Any, demo: bool, **options: Any) -> None:
        key = keys.ensure_signing_key()
        keys.check_keys_decrypt()
        self.stdout.write(f"signing key: {key.kid} ({key.algorithm})")
        if not demo:
            return
        actor = Actor.system("bootstrap")
        organization = Organization.objects.filter(external_id=DEMO_EXTERNAL_ID).first()
        if organization is None:
            organization = organization_create(
                actor=actor, display_name="Demo Organization", external_id=DEMO_EXTERNAL_ID
            )
        self.stdout.write(f"demo organization: {organization.id}")
        if not ApiResource.objects.filter(audience=DEMO_API["audience"]).exists():
            api_resource_create(actor=actor, **DEMO_API)
        self.stdout.write(f"catalog API: {DEMO_API['name']} ({DEMO_API['audience']})")
        existing = ApiClient.objects.filter(
            organization__isnull=True, name=DEMO_MANAGEMENT_CLIENT
        ).first()
        if existing is not None:
            self.stdout.write(
                f"demo management client: {existing.id} (its secret was printed when it was "
                "created; make another with: python manage.py create_management_client --name NAME)"
            )
            return
        client, plain = management_client_create(actor=actor, name=DEMO_MANAGEMENT_CLIENT)
        self.stdout.write(
            "\n".join(
                [
                    "demo management client created; the secret is shown only now:",
                    f"  MGMT_CLIENT_ID={client.id}",
                    f"  MGMT_CLIENT_SECRET={plain}",
                ]
            )
        )
