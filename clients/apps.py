from django.apps import AppConfig


class ClientsConfig(AppConfig):
    name = "clients"
    verbose_name = "Organizations and API clients"

    def ready(self) -> None:
        # Registers the domain's outbox kinds in every process (the worker runs them).
        from clients import tasks  # noqa: F401
