"""Settings of the example deployment API: everything the kit needs is ``RESOURCE_SERVER``.

Environment:

* ``ISSUER`` (required): our authorization server's issuer, e.g. ``http://127.0.0.1:8000``.
* ``AUDIENCE``: the ``aud`` this API accepts (default ``deployment-api.acmecorp.com``).
* ``JWKS_URL``: where the keys are; unset means RFC 8414 discovery from the issuer.
* ``MIN_REFETCH_INTERVAL``: least seconds between two JWKS fetches (default 5).
* ``ALLOWED_HOSTS``: comma-separated (default ``127.0.0.1,localhost``).
"""

from __future__ import annotations

import os
import secrets

from django.core.exceptions import ImproperlyConfigured

ISSUER = os.environ.get("ISSUER", "").rstrip("/")
if not ISSUER:
    raise ImproperlyConfigured("set ISSUER to the authorization server, e.g. http://127.0.0.1:8000")

RESOURCE_SERVER = {
    "ISSUER": ISSUER,
    "AUDIENCE": os.environ.get("AUDIENCE", "deployment-api.acmecorp.com"),
    "JWKS_URL": os.environ.get("JWKS_URL") or None,
    "MIN_REFETCH_INTERVAL": float(os.environ.get("MIN_REFETCH_INTERVAL", "5")),
}

# Nothing here is signed (no sessions, no cookies), so a per-process key is enough.
SECRET_KEY = os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = False
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS = ["rest_framework"]
# A bearer-token API: no sessions, no cookies, hence no CSRF middleware either.
MIDDLEWARE = ["django.middleware.security.SecurityMiddleware"]
ROOT_URLCONF = "examples.deployment_api.urls"
WSGI_APPLICATION = "examples.deployment_api.wsgi.application"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    # No django.contrib.auth here: an unauthenticated request has no user at all.
    "UNAUTHENTICATED_USER": None,
}

# The kit logs JWKS fetches (INFO) and outages (WARNING/ERROR) on "m2m_auth_kit.verify".
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"oauth": {"handlers": ["console"], "level": "INFO"}},
}
