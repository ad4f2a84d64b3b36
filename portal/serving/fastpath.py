"""The token fast path: ``POST /oauth/token`` answered without the Django request cycle.

The token endpoint's work is one query and one signature; Django's request cycle around it
(request object, the middlewares, URL resolution, signals, response object) costs more than the
signature. This adapter answers token requests straight from the WSGI environ with the very same
``oauth.token.endpoint.token_endpoint`` the Django view calls, so parsing, validation, errors and
metrics live in one place. It does what the middleware would have done for that answer (the
request id and access-log line, the security headers of ``portal.serving.headers``,
Content-Length), and hands every other request, and any token request it is not sure about (a
Host outside ALLOWED_HOSTS, an HTTP request that must be redirected to HTTPS, DEBUG on, a
malformed Content-Type), to Django unchanged. tests/e2e/test_token_server.py checks that both
paths answer alike.

It is WSGI middleware for ``portal.wsgi``, and the ASGI bridge (``portal.serving.bridge``) calls
its ``answer`` directly on the event loop, with the rows the batcher read ahead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.db import connections
from django.http.request import split_domain_port, validate_host
from django.urls import reverse

from oauth import metrics as token_metrics
from oauth.settings import oauth_settings
from oauth.token.endpoint import token_endpoint
from oauth.token.lookup import Prefetched
from oauth.token.request import OAuthError, TokenRequest, content_length_of, token_request_of
from portal.lib import net
from portal.lib.logs import REQUEST_ID_HEADER, request_id_from, request_id_var
from portal.serving.headers import security_headers
from portal.serving.middleware import CONTROL_CHARACTER, write_access_line

WSGIApp = Callable[[dict[str, Any], Callable], Iterable[bytes]]
# (status, headers, body): a whole answer, as the fast path makes it.
Answer = tuple[int, list[tuple[str, str]], bytes]

# A connection that answered a query this recently is taken as alive: under load this saves the
# "SELECT 1" health check (CONN_HEALTH_CHECKS) that Django runs before every request's first query,
# a round trip as long as the token query itself. An idle connection is still checked.
HEALTHY_FOR_SECONDS = 1.0
# The environ key under which serves() keeps its answer (not an HTTP_* key: no client sets it).
SERVES_KEY = "m2m.token_fast_path"
_MAX_KNOWN_HOSTS = 64


def _status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


class TokenFastPath:
    """WSGI middleware: serve ``POST /oauth/token`` without the Django request cycle."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.path = reverse("oauth:token")
        self.enabled = not settings.DEBUG and not settings.USE_X_FORWARDED_HOST
        self.known_hosts: set[str] = set()
        self.status_lines = {code.value: _status_line(code.value) for code in HTTPStatus}
        self.headers = security_headers(secure=False)
        self.secure_headers = security_headers(secure=True)
        self.proxy_ssl_header = settings.SECURE_PROXY_SSL_HEADER
        # Django's connections are per thread, so is the time each last answered.
        self.local = threading.local()

    def _is_secure(self, environ: dict[str, Any]) -> bool:
        if self.proxy_ssl_header:
            header, secure_value = self.proxy_ssl_header
            value = environ.get(header)
            if value is not None:
                return value.split(",", 1)[0].strip() == secure_value
        return environ.get("wsgi.url_scheme") == "https"

    def _host_allowed(self, environ: dict[str, Any]) -> bool:
        host = environ.get("HTTP_HOST")
        if not host:
            return False
        if host in self.known_hosts:
            return True
        domain, _port = split_domain_port(host)
        if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
            return False  # Django answers it (400, DisallowedHost logged)
        if len(self.known_hosts) < _MAX_KNOWN_HOSTS:
            self.known_hosts.add(host)
        return True

    def serves(self, environ: dict[str, Any]) -> bool:
        """True when this request is answered here; False when it must go to Django.

        The answer is kept in the environ, so that the server (portal.serving.bridge) and this
        middleware do not both work it out."""
        known = environ.get(SERVES_KEY)
        if known is not None:
            return known
        environ[SERVES_KEY] = served = self._serves(environ)
        return served

    def _serves(self, environ: dict[str, Any]) -> bool:
        if not self.enabled or environ.get("PATH_INFO") != self.path:
            return False
        if CONTROL_CHARACTER.search(environ.get("CONTENT_TYPE", "")):
            return False  # MalformedRequestGuard answers it
        # What AccessLogMiddleware does first (portal.lib.net reads nothing but request.META, which
        # in Django is this environ).
        net.drop_untrusted_forwarded_proto(SimpleNamespace(META=environ))
        if settings.SECURE_SSL_REDIRECT and not self._is_secure(environ):
            return False
        return self._host_allowed(environ)

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if not self.serves(environ):
            return self.app(environ, start_response)
        status, headers, body = self.answer(environ)
        start_response(self.status_lines[status], headers)
        return [body]

    @staticmethod
    def parse(environ: dict[str, Any]) -> TokenRequest | OAuthError:
        """The token request's form and credentials, read from its body (``wsgi.input``) once,
        exactly as the endpoint reads them; or the error that refuses the form. The server
        (portal.serving.bridge) decides from it where to answer the request, then passes it to
        ``answer``."""
        try:
            return token_request_of(
                environ.get("CONTENT_TYPE", ""),
                content_length_of(environ.get("CONTENT_LENGTH")),
                environ.get("HTTP_AUTHORIZATION"),
                environ["wsgi.input"].read,
            )
        except OAuthError as error:
            return error

    def answer(
        self,
        environ: dict[str, Any],
        ahead: Prefetched | None = None,
        parsed: TokenRequest | OAuthError | None = None,
    ) -> Answer:
        """The whole answer to a token request that ``serves()`` accepted; ``ahead``, the rows
        of the client it names when the server has read them already (oauth.token.batching);
        ``parsed``, the request as the server parsed it already (``parse``)."""
        start = time.perf_counter()
        as_request = SimpleNamespace(META=environ)
        secure = self._is_secure(environ)
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        context_token = request_id_var.set(request_id)
        ip = net.client_ip(as_request)
        try:
            try:
                status, headers, body, log = self._answer(environ, ip, ahead, parsed)
            finally:
                token_metrics.observe_token_seconds(time.perf_counter() - start)
            write_access_line(
                request_id=request_id,
                method=environ["REQUEST_METHOD"],
                path=self.path,
                status=status,
                start=start,
                client_ip=ip,
                context=log,
            )
        finally:
            request_id_var.reset(context_token)
        response_headers = [*headers.items(), ("Content-Length", str(len(body)))]
        response_headers += self.secure_headers if secure else self.headers
        response_headers.append((REQUEST_ID_HEADER, request_id))
        return status, response_headers, body

    def _answer(
        self,
        environ: dict[str, Any],
        ip: str | None,
        ahead: Prefetched | None,
        parsed: TokenRequest | OAuthError | None,
    ) -> tuple[int, dict[str, str], bytes, dict]:
        """token_endpoint's answer and access-log fields, with Django's database upkeep."""
        now = time.monotonic()
        if ahead is not None and now - getattr(self.local, "upkeep", 0.0) < 1.0:
            # Its rows were read on the batcher's connection (oauth.token.batching): Django's is
            # likely not used at all, and is treated like one whose check was skipped. Its
            # upkeep (closing it after an error, or when too old) still runs once a second.
            skipped_check, open_connections = True, []
        else:
            self.local.upkeep = now
            skipped_check, open_connections = self._begin()
        read_bytes: list[bytes] = []

        def read(size: int) -> bytes:
            read_bytes.append(environ["wsgi.input"].read(size))
            return read_bytes[-1]

        request = (
            environ["REQUEST_METHOD"],
            environ.get("CONTENT_TYPE", ""),
            content_length_of(environ.get("CONTENT_LENGTH")),
            environ.get("HTTP_AUTHORIZATION"),
        )
        # RFC 9449: the proof, and the URI it must name, only when there is one.
        proof = environ.get("HTTP_DPOP")
        target = self.target_uri(environ) if proof is not None else None
        log: dict[str, Any] = {}
        try:
            status, headers, body = token_endpoint(
                *request, read, log, ip, ahead, parsed, proof, target
            )
            if status == 503 and skipped_check and (ahead is None or ahead.rows is not None):
                # The connection we did not health-check was dead (a database restart): do what
                # the check would have done, afterwards. The failed query is the first thing the
                # endpoint does, so nothing has happened yet and asking again is safe.
                for conn in connections.all(initialized_only=True):
                    conn.close()
                log = {}
                status, headers, body = token_endpoint(
                    *request,
                    lambda size: b"".join(read_bytes)[:size],
                    log,
                    ip,
                    ahead,
                    parsed,
                    proof,
                    target,
                )
        finally:
            for conn in open_connections:  # what Django's request_finished does
                conn.close_if_unusable_or_obsolete()
        if status != 503:
            self.local.last_healthy = time.monotonic()
        return status, headers, body, log

    def target_uri(self, environ: dict[str, Any]) -> str:
        """The URI this request was sent to, as Django's ``build_absolute_uri`` makes it: the
        scheme a trusted proxy reports (SECURE_PROXY_SSL_HEADER), the Host (served only when
        allowed; never X-Forwarded-Host, with which the fast path is off), the path."""
        scheme = "https" if self._is_secure(environ) else "http"
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        return f"{scheme}://{environ.get('HTTP_HOST', '')}{path}"

    def _begin(self) -> tuple[bool, list]:
        """What Django's request_started does for the database (close_old_connections).

        True when the health check of an open connection is skipped as recently proven; and the
        connections, for the end of the request.
        """
        recent = time.monotonic() - getattr(self.local, "last_healthy", 0.0) < HEALTHY_FOR_SECONDS
        skipped = False
        open_connections = connections.all(initialized_only=True)
        for conn in open_connections:
            conn.close_if_unusable_or_obsolete()
            if recent and conn.connection is not None:
                conn.health_check_done = True
                skipped = True
        return skipped, open_connections


def token_fast_path(app: WSGIApp) -> TokenFastPath | None:
    """The token fast path in front of ``app``; None when OAUTH["TOKEN_FAST_PATH"] is off."""
    if not oauth_settings.TOKEN_FAST_PATH:
        return None
    return TokenFastPath(app)
