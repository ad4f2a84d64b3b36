from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ConsoleConfig(AppConfig):
    """The staff console: the Django admin, one module per subject (``portal.console.admin``
    imports them all, and Django's autodiscovery imports it)."""

    name = "portal.console"
    label = "console"
    verbose_name = "Staff console"


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """Django's admin app, serving the console's site (the portal's log-in limits)."""

    default = False  # named in INSTALLED_APPS; ConsoleConfig stays this module's default
    default_site = "portal.console.site.ConsoleSite"
