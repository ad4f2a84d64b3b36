"""WSGI entry point: ``gunicorn portal.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

django_application = get_wsgi_application()

# POST /oauth/token is answered by the same code without the Django request cycle (oauth/wsgi.py).
# Imported after get_wsgi_application(), which sets Django up: it imports models.
from portal.serving.fastpath import with_token_fast_path  # noqa: E402
from portal.serving.middleware import MalformedRequestGuard  # noqa: E402

application = MalformedRequestGuard(with_token_fast_path(django_application))
