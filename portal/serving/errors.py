"""What Django answers by itself, before any view runs, in the format of the face asked.

Django refuses some requests before URL resolution reaches a view: a Host header outside
ALLOWED_HOSTS (DisallowedHost), too many form fields, a malformed multipart body. Its default
400 page is HTML; under /api/ the answer is the management API's error format, and under the
authorization server's own paths (/oauth/, /.well-known/) an RFC 6749 error object.
"""

from __future__ import annotations

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import bad_request as django_bad_request

from portal.api.errors import json_error

OAUTH_PREFIXES = ("/oauth/", "/.well-known/")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler400`` of the root URLconf."""
    path = request.path_info
    if isinstance(exception, DisallowedHost):
        message = "the Host header names no host this server answers for"
    else:
        message = "the request is malformed"
    if path.startswith("/api/"):
        return json_error(400, message)
    if path.startswith(OAUTH_PREFIXES):
        response = JsonResponse(
            {"error": "invalid_request", "error_description": message}, status=400
        )
        response["Cache-Control"] = "no-store"
        return response
    return django_bad_request(request, exception)
