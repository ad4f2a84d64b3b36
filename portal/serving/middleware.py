"""The first middleware: request id, one access-log line per request, API request counts."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from django.core.exceptions import BadRequest
from django.http import Http404, HttpRequest, HttpResponse

from portal.api.errors import json_error, not_found
from portal.lib import net
from portal.lib.logs import (
    REQUEST_ID_HEADER,
    plain_json_stream,
    record_extra,
    request_id_from,
    request_id_var,
    write_json_line,
)
from portal.serving.headers import security_headers
from portal.serving.metrics import record_api_request

access_logger = logging.getLogger("portal.access")


def _default_outcome(status: int) -> str:
    if status < 400:
        return "ok"
    return "client_error" if status < 500 else "server_error"


class AccessLogMiddleware:
    """Give each request an id, and log it once when it is done.

    It comes first in MIDDLEWARE so that its duration covers every other middleware and
    its line is written even when a later one answers early. The line holds the method,
    the path without its query string (a caller may put a credential there), the status,
    the duration, the client's address, and what views added with ``log_context``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        request_id = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id  # type: ignore[attr-defined]
        request.log_context = {}  # type: ignore[attr-defined]
        net.drop_untrusted_forwarded_proto(request)
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            write_access_line(
                request_id=request_id,
                method=request.method or "",
                path=request.path,
                status=response.status_code,
                start=start,
                client_ip=net.client_ip(request),
                context=request.log_context,  # type: ignore[attr-defined]
            )
            return response
        finally:
            request_id_var.reset(token)


def write_access_line(
    *,
    request_id: str,
    method: str,
    path: str,
    status: int,
    start: float,
    client_ip: str | None,
    context: dict,
) -> None:
    """Count the request and write its access-log line (also used by the token fast path)."""
    duration_ms = round((time.perf_counter() - start) * 1000, 2)
    record_api_request(path, status)
    fields = {
        "request_id": request_id,
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": duration_ms,
        "client_ip": client_ip,
        "outcome": _default_outcome(status),
        **context,
    }
    message = f"{method} {path} {status} {duration_ms}ms"
    handler = plain_json_stream(access_logger, logging.INFO)
    if handler is not None and write_json_line(handler, access_logger.name, message, fields):
        return
    if access_logger.isEnabledFor(logging.INFO):
        # Logger.info less its search of the stack for the caller, which no formatter of ours
        # prints.
        record = access_logger.makeRecord(
            access_logger.name,
            logging.INFO,
            __file__,
            0,
            "%s %s %s %sms",
            (method, path, status, duration_ms),
            None,
            extra=record_extra(fields),
        )
        access_logger.handle(record)


class SecurityHeadersMiddleware:
    """The security headers of ``portal.serving.headers`` on every answer.

    A header the view set itself is kept (a page may loosen its own policy), and so is an
    answer marked ``xframe_options_exempt`` (Django's decorator) without X-Frame-Options.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.plain = security_headers(secure=False)
        self.secure = security_headers(secure=True)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        exempt = getattr(response, "xframe_options_exempt", False)
        for name, value in self.secure if request.is_secure() else self.plain:
            if name not in response and not (exempt and name == "X-Frame-Options"):
                response[name] = value
        return response


class NulCharacterMiddleware:
    """A NUL (``%00``) in the path or a query parameter is refused before any view reads it.

    Our ids and searches are compared with text columns, and PostgreSQL text cannot hold a NUL:
    such a lookup would fail with a database error. A path with one names nothing (404); a query
    parameter with one is a bad request (400). Under /api/ the answers are in the API's format.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        api = request.path_info.startswith("/api/")
        if "\x00" in request.path_info:
            if api:
                return not_found(request)
            raise Http404("no such page")
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query:  # what decodes to a NUL, and a raw one
            if api:
                return json_error(400, "a query parameter holds a NUL character")
            raise BadRequest("a query parameter holds a NUL character")
        return self.get_response(request)


CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


class MalformedRequestGuard:
    """WSGI middleware: a 400 for a Content-Type with control characters, before Django sees it.

    Django builds its request object from the Content-Type before any middleware runs, and a NUL
    in the charset parameter makes ``codecs.lookup`` raise ValueError there, which would be a 500
    on any URL. A real client never sends one.
    """

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> object:
        content_type = environ.get("CONTENT_TYPE", "")
        if content_type and CONTROL_CHARACTER.search(content_type):
            body = b'{"error":"invalid_request","error_description":"malformed Content-Type"}'
            start_response(
                "400 Bad Request",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return self.app(environ, start_response)
