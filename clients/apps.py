from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class ClientsConfig(AppConfig):
    name = "clients"
    verbose_name = "Organizations and API clients"

    def ready(self) -> None:
        # Registers the domain's outbox kinds in every process (the worker runs them).
        # Registers the start-up checks of the secret prefix and lifetime cap.
        # ready() raises too: a server started without ``manage.py check`` (gunicorn) must not
        # issue secrets that no published pattern matches.
        from clients import (
            checks,
            tasks,  # noqa: F401
        )

        errors = checks.check_secret_prefix() + checks.check_secret_lifetime_cap()
        if errors:
            raise ImproperlyConfigured(f"{errors[0].msg} ({errors[0].hint or errors[0].id})")
