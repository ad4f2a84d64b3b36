"""The static files manifest that the portal and admin pages need when DEBUG is off.

With DEBUG off, static files are stored under hashed names (``ManifestStaticFilesStorage``) and
every ``{% static %}`` tag looks its file up in ``STATIC_ROOT/staticfiles.json``, which
``manage.py collectstatic`` writes. Without it every page answers 500 while the token endpoint
works, which is easy to miss. So the server refuses to start without it (``portal.wsgi``, hence
every entry point: gunicorn, uvicorn, any WSGI or ASGI server) and ``/readyz`` reports it.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import storages

COLLECTSTATIC = "python manage.py collectstatic --noinput"


def static_manifest_problem() -> str | None:
    """What is wrong with the static files manifest, or None when pages can be rendered
    (the manifest is there, or the configured storage needs none)."""
    storage = storages["staticfiles"]
    if not isinstance(storage, ManifestFilesMixin):
        return None
    where = f"{settings.STATIC_ROOT}/{storage.manifest_name}"
    content = storage.read_manifest()
    if content is None:
        return (
            f"the static files manifest {where} is missing: run `{COLLECTSTATIC}` "
            "(with the same STATIC_ROOT) before starting the server"
        )
    try:
        paths = json.loads(content).get("paths")
    except (ValueError, AttributeError):
        paths = None
    if not paths:
        return f"the static files manifest {where} is unreadable or empty: run `{COLLECTSTATIC}`"
    return None


def require_static_manifest() -> None:
    """Stop start-up, with the reason and the command that fixes it, when pages cannot work."""
    problem = static_manifest_problem()
    if problem:
        raise ImproperlyConfigured(f"refusing to start: {problem}")


def check_static_files() -> None:
    """The readiness check (``/readyz``): raises when the manifest is missing or unreadable."""
    problem = static_manifest_problem()
    if problem:
        raise FileNotFoundError(problem)
