"""The package's own tests run against a real authorization server over HTTP.

They need no Django: the server is started elsewhere (the server repository's
``tests/kit/test_package.py`` starts ours and runs this suite in a virtualenv that has only
the built wheel, its dependencies, requests, httpx and pytest) and named by three variables:

    M2M_KIT_SERVER_URL            the server's base URL, also its issuer
    M2M_KIT_MGMT_CLIENT_ID        a management client of that server
    M2M_KIT_MGMT_CLIENT_SECRET

Without them every test is skipped with that reason.
"""

from __future__ import annotations

import http.client
import os
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from m2m_auth_kit.management import ManagementClient, Organization

AUDIENCE = "deployment-api.acmecorp.com"
GUIDE_CLIENT: dict[str, Any] = {
    "name": "GitHub Actions Deployment Service",
    "description": "Service account for GitHub Actions to deploy applications to production",
    "custom_claims": [{"key": "github_repository", "value": "acmecorp/inventory-service"}],
    "scopes": ["deploy:applications", "read:deployments"],
    "audience": [AUDIENCE],
    "expiry": 3600,
}


@dataclass(frozen=True)
class Server:
    url: str
    mgmt_client_id: str
    mgmt_client_secret: str = field(repr=False)

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth/token"


@pytest.fixture(scope="session")
def server() -> Server:
    names = ("M2M_KIT_SERVER_URL", "M2M_KIT_MGMT_CLIENT_ID", "M2M_KIT_MGMT_CLIENT_SECRET")
    values = [os.environ.get(name) for name in names]
    if not all(values):
        pytest.skip(f"set {', '.join(names)} to run against a server")
    url, client_id, secret = (str(value) for value in values)
    return Server(url.rstrip("/"), client_id, secret)


@pytest.fixture
def mgmt(server: Server) -> ManagementClient:
    return ManagementClient(server.url, server.mgmt_client_id, server.mgmt_client_secret)


@pytest.fixture
def org(mgmt: ManagementClient, request: pytest.FixtureRequest) -> Organization:
    """An organization of its own for each test."""
    return mgmt.organizations.create(f"kit {request.node.name}"[:100])


# --- A forwarding proxy --------------------------------------------------------------------------


class ForwardingProxy(ThreadingHTTPServer):
    """A plain HTTP forward proxy on 127.0.0.1 that records what passed through it.

    It forwards absolute-form requests (``POST http://127.0.0.1:8000/oauth/token``) to
    loopback addresses only, and answers anything else 403.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.seen: list[tuple[str, str, bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: ForwardingProxy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        target = urllib.parse.urlsplit(self.path)
        if target.scheme != "http" or target.hostname not in ("127.0.0.1", "localhost"):
            self.send_error(403, "this proxy forwards to 127.0.0.1 only")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append((self.command, self.path, body))
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() not in ("proxy-connection", "connection", "keep-alive")
        }
        connection = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=30)
        try:
            path = target.path + (f"?{target.query}" if target.query else "")
            connection.request(self.command, path, body=body or None, headers=headers)
            answer = connection.getresponse()
            content = answer.read()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)
        finally:
            connection.close()

    do_GET = do_POST = do_PATCH = do_DELETE = _forward


@pytest.fixture
def proxy() -> Iterator[ForwardingProxy]:
    proxy = ForwardingProxy()
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
