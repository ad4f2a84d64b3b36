"""Our applications under paths that do not say whether they are WSGI or ASGI (an operator's own
module), for tests/e2e/test_entry_points.py: the worker must find out and refuse."""

from portal.asgi import application as asgi_application
from portal.wsgi import application as wsgi_application

__all__ = ["asgi_application", "wsgi_application"]
