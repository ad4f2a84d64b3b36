"""Start-up checks of the domain's settings (Django system checks: ``manage.py check`` and
every server start refuse a bad value with its id)."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register

from clients.conf import client_settings
from clients.models import SECRET_PREFIX_RE


@register()
def check_secret_prefix(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """``OAUTH["SECRET_PREFIX"]``: letters, digits and ``_``, 4 to 32 characters, ending with
    ``_`` (the secret format's regular expression is published; scanners match on it)."""
    prefix = client_settings.SECRET_PREFIX
    if isinstance(prefix, str) and SECRET_PREFIX_RE.fullmatch(prefix):
        return []
    return [
        Error(
            f"OAUTH_SECRET_PREFIX {prefix!r} is not a valid secret prefix",
            hint='use 4 to 32 letters, digits or "_", ending with "_" (for example "acme_")',
            id="clients.E001",
        )
    ]


@register()
def check_secret_lifetime_cap(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    cap = client_settings.SECRET_MAX_LIFETIME_DAYS_CAP
    if cap is None or (isinstance(cap, int) and not isinstance(cap, bool) and cap >= 1):
        return []
    return [
        Error(
            f"OAUTH_SECRET_MAX_LIFETIME_DAYS_CAP {cap!r} must be a positive number of days",
            id="clients.E002",
        )
    ]
