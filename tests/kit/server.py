"""A tiny, real authorization server for the resource-server kit's tests.

It serves RFC 8414 metadata, a JWKS, RFC 7662 introspection, a
client-credentials token endpoint and one protected resource from a
``ThreadingHTTPServer`` on 127.0.0.1, in a background thread. Tests steer it
through plain attributes (rotate keys, fail the JWKS, set Cache-Control, slow
down the token endpoint) and read ``counts`` to see how often the kit called.
"""

from __future__ import annotations

import base64
import functools
import json
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

AUDIENCE = "https://api.test"
# Characters that need RFC 6749 §2.3.1 form-encoding inside HTTP Basic.
CLIENT_ID = "kit-client:1"
CLIENT_SECRET = "s3cret with spaces/+&=ü"
RS_CLIENT_ID = "resource-server"
RS_CLIENT_SECRET = "rs-secret"


@functools.cache
def rsa_key(number: int = 0) -> rsa.RSAPrivateKey:
    """A 2048-bit RSA key, generated once per test run for each ``number``."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def ec_key(number: int = 0) -> ec.EllipticCurvePrivateKey:
    """A P-256 key, generated once per test run for each ``number``."""
    return ec.generate_private_key(ec.SECP256R1())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(private_key: Any, kid: str, alg: str | None) -> dict[str, Any]:
    algorithm = jwt.get_algorithm_by_name(
        "ES256" if isinstance(private_key, ec.EllipticCurvePrivateKey) else "RS256"
    )
    jwk = algorithm.to_jwk(private_key.public_key(), as_dict=True)
    jwk.update({"kid": kid, "use": "sig"})
    if alg:
        jwk["alg"] = alg
    return jwk


class SigningKey:
    """A private key the server signs with, published under ``kid``."""

    def __init__(self, private_key: Any, kid: str, alg: str, *, publish_alg: bool = True) -> None:
        self.private_key = private_key
        self.kid = kid
        self.alg = alg
        self.publish_alg = publish_alg

    def jwk(self) -> dict[str, Any]:
        return public_jwk(self.private_key, self.kid, self.alg if self.publish_alg else None)


class KitServer:
    """The server's state and controls; ``start()`` and ``stop()`` run it."""

    def __init__(self) -> None:
        self.keys: list[SigningKey] = [SigningKey(rsa_key(0), "rsa-0", "RS256")]
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        # JWKS controls
        self.jwks_failure: str | None = None  # None, "500", "badjson", "reset"
        self.jwks_cache_control: str | None = None
        self.jwks_delay = 0.0
        self.extra_jwks: list[Any] = []  # published as they are, after the signing keys
        # introspection controls
        self.inactive_tokens: set[str] = set()
        self.introspection_requests: list[dict[str, Any]] = []
        # token endpoint controls
        self.token_expires_in: int | None = 3600
        self.token_delay = 0.0
        self.token_error: tuple[int, Any] | None = None
        self.token_requests: list[dict[str, Any]] = []
        self.issued = 0
        # protected resource: which API tokens it refuses
        self.revoked_api_tokens: set[str] = set()
        self.metadata_issuer: str | None = None
        self.metadata_changes: dict[str, Any] = {}  # merged into the metadata; None removes
        # what GET /api/v1/... answers (the management SDK's tests): status, body, headers
        self.api_answer: tuple[int, Any, dict[str, str]] = (200, {}, {})
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> KitServer:
        server = self

        class Handler(_Handler):
            kit = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        # A short poll interval keeps shutdown() (once per test) fast.
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return self._httpd.server_address[1]

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.issuer + path

    def count(self, path: str) -> int:
        with self._lock:
            return self.counts[path]

    def _hit(self, path: str) -> None:
        with self._lock:
            self.counts[path] += 1

    # -- keys and tokens -------------------------------------------------------------------------

    def rotate(self, private_key: Any = None, alg: str = "RS256", *, keep_old: bool = True) -> str:
        """Publish a new signing key (first in the list) and return its kid."""
        kid = f"key-{uuid.uuid4().hex[:8]}"
        new = SigningKey(private_key or rsa_key(len(self.keys)), kid, alg)
        self.keys = [new, *self.keys] if keep_old else [new]
        return kid

    def mint(
        self,
        claims: dict[str, Any] | None = None,
        *,
        key: SigningKey | None = None,
        headers: dict[str, Any] | None = None,
        lifetime: int = 300,
        **overrides: Any,
    ) -> str:
        """A signed access token; ``overrides`` replace default claims (None removes one)."""
        key = key or self.keys[0]
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "client-1",
            "client_id": "client-1",
            "oid": "org-1",
            "scope": "read write",
            "iat": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
        }
        payload.update(claims or {})
        payload.update(overrides)
        payload = {name: value for name, value in payload.items() if value is not None}
        header = {"kid": key.kid, "typ": "at+jwt", **(headers or {})}
        return jwt.encode(payload, key.private_key, algorithm=key.alg, headers=header)

    # -- request handling ------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        metadata = {
            "issuer": self.metadata_issuer or self.issuer,
            "jwks_uri": self.url("/jwks"),
            "introspection_endpoint": self.url("/introspect"),
            "token_endpoint": self.url("/token"),
            **self.metadata_changes,
        }
        return {name: value for name, value in metadata.items() if value is not None}


def _client_from(handler: BaseHTTPRequestHandler, form: dict[str, str]) -> tuple[str, str] | None:
    header = handler.headers.get("Authorization", "")
    if header.startswith("Basic "):
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)
    if "client_id" in form:
        return form["client_id"], form.get("client_secret", "")
    return None


class _Handler(BaseHTTPRequestHandler):
    kit: KitServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        return dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))

    def do_GET(self) -> None:
        kit = self.kit
        path = urllib.parse.urlsplit(self.path).path
        kit._hit(path)
        if path == "/.well-known/oauth-authorization-server":
            self._send(200, kit.metadata())
        elif path == "/jwks":
            if kit.jwks_delay:
                time.sleep(kit.jwks_delay)
            if kit.jwks_failure == "reset":
                self.close_connection = True
                self.connection.close()
                return
            if kit.jwks_failure == "500":
                self._send(500, {"error": "server_error"})
                return
            if kit.jwks_failure == "badjson":
                self._send(200, b"{not json")
                return
            headers = {}
            if kit.jwks_cache_control:
                headers["Cache-Control"] = kit.jwks_cache_control
            self._send(200, {"keys": [key.jwk() for key in kit.keys] + kit.extra_jwks}, headers)
        elif path == "/resource":
            self._resource()
        elif path.startswith("/api/v1/"):
            self._send(*kit.api_answer)
        else:
            self._send(404, {"error": "not_found"})

    def do_POST(self) -> None:
        kit = self.kit
        path = urllib.parse.urlsplit(self.path).path
        kit._hit(path)
        if path == "/introspect":
            form = self._form()
            if _client_from(self, {}) != (RS_CLIENT_ID, RS_CLIENT_SECRET):
                self._send(401, {"error": "invalid_client"})
                return
            kit.introspection_requests.append(form)
            token = form.get("token", "")
            self._send(200, {"active": token not in kit.inactive_tokens})
        elif path == "/token":
            self._token()
        elif path == "/resource":
            self._resource()
        else:
            self._send(404, {"error": "not_found"})

    def _token(self) -> None:
        kit = self.kit
        form = self._form()
        client = _client_from(self, form)
        kit.token_requests.append(
            {"form": form, "basic": self.headers.get("Authorization", "").startswith("Basic ")}
        )
        if kit.token_delay:
            time.sleep(kit.token_delay)
        if kit.token_error is not None:
            status, body = kit.token_error
            self._send(status, body)
            return
        if client != (CLIENT_ID, CLIENT_SECRET):
            self._send(401, {"error": "invalid_client", "error_description": "bad credentials"})
            return
        if form.get("grant_type") != "client_credentials":
            self._send(400, {"error": "unsupported_grant_type"})
            return
        with kit._lock:
            kit.issued += 1
            token = f"at-{kit.issued}"
        answer: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if kit.token_expires_in is not None:
            answer["expires_in"] = kit.token_expires_in
        self._send(200, answer, {"Cache-Control": "no-store"})

    def _resource(self) -> None:
        kit = self.kit
        header = self.headers.get("Authorization", "")
        body = b""
        if self.command == "POST":
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        token = header[7:] if header.startswith("Bearer ") else ""
        if not token.startswith("at-") or token in kit.revoked_api_tokens:
            self._send(
                401,
                {"error": "invalid_token"},
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
            return
        self._send(200, {"token": token, "body": body.decode()})
