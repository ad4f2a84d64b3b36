from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The staff console: the Django admin, one module per subject (``portal.console.admin``
    imports them all, and Django's autodiscovery imports it)."""

    name = "portal.console"
    label = "console"
    verbose_name = "Staff console"
