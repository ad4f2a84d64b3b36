"""WSGI entry point: ``gunicorn portal.wsgi`` (or any WSGI server).

``POST /oauth/token`` is answered by the token fast path (``portal.serving.fastpath``) in front
of Django; everything else by Django. ``portal.asgi`` serves the same two halves.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

django_application = get_wsgi_application()

# Imported after get_wsgi_application(), which sets Django up: they import models.
from portal.serving.static_files import require_static_manifest  # noqa: E402

# Every server imports this module (portal.asgi too): without collectstatic, stop here with the
# command to run rather than answer 500 to every page.
require_static_manifest()

from portal.serving.fastpath import token_fast_path  # noqa: E402
from portal.serving.middleware import MalformedRequestGuard  # noqa: E402

# None when OAUTH_TOKEN_FAST_PATH=false: Django's view answers token requests too.
fast_path = token_fast_path(django_application)
application = MalformedRequestGuard(fast_path or django_application)
