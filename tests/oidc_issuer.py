"""A local OIDC issuer for the federation tests: a real HTTP server on 127.0.0.1 that publishes a
discovery document and a JWKS, and signs workload tokens shaped exactly like GitHub Actions' and
Kubernetes' (their claims, header and lifetimes as the two document them).

Reaching it needs the test-only OUTBOUND_ALLOW_INSECURE (http:// and loopback).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

from tests.assertion_helpers import public_jwk, rsa_key


@dataclass
class LocalServer:
    """A plain HTTP server on 127.0.0.1: ``routes`` maps a path to (status, headers, body);
    ``hosts`` records the Host header of each request, ``paths`` each path asked for."""

    host: str = "127.0.0.1"
    port: int = 0
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def _handler(local: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            local.hosts.append(self.headers.get("Host", ""))
            local.paths.append(self.path)
            status, headers, body = local.routes.get(self.path, (404, {}, b"nothing"))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def local_server() -> Iterator[LocalServer]:
    local = LocalServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(local))
    local.port = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield local
    finally:
        httpd.shutdown()
        httpd.server_close()


class Issuer:
    """An OIDC issuer on a ``LocalServer``: ``key_index`` picks its current RSA signing key
    (``rotate()`` moves to a new one and publishes only that); ``token()`` signs a claim set."""

    def __init__(self, server: LocalServer, max_age: int = 300) -> None:
        self.server = server
        self.url = server.url
        self.max_age = max_age
        self.key_index = 10
        self.publish()

    @property
    def private_key(self) -> Any:
        return rsa_key(self.key_index)

    @property
    def kid(self) -> str:
        return f"issuer-key-{self.key_index}"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.private_key, kid=self.kid, use="sig", alg="RS256")]}

    def publish(self) -> None:
        discovery = {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/.well-known/jwks",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }
        self.server.routes["/.well-known/openid-configuration"] = (
            200,
            {"Content-Type": "application/json"},
            json.dumps(discovery).encode(),
        )
        self.server.routes["/.well-known/jwks"] = (
            200,
            {"Content-Type": "application/json", "Cache-Control": f"max-age={self.max_age}"},
            json.dumps(self.jwks()).encode(),
        )

    def rotate(self) -> None:
        self.key_index += 1
        self.publish()

    def sign(
        self, claims: dict[str, Any], *, key: Any = None, alg: str = "RS256", kid: Any = ...
    ) -> str:
        headers: dict[str, Any] = {"typ": "JWT"}
        kid = self.kid if kid is ... else kid
        if kid is not None:
            headers["kid"] = kid
        return jwt.encode(claims, key or self.private_key, algorithm=alg, headers=headers)

    def github_claims(self, audience: str, **overrides: Any) -> dict[str, Any]:
        """A GitHub Actions token's claims (docs.github.com, "About security hardening with
        OpenID Connect"): nbf ten minutes before iat, exp five minutes after."""
        now = int(time.time())
        claims = {
            "jti": secrets.token_hex(16),
            "sub": "repo:acmecorp/inventory-service:environment:production",
            "environment": "production",
            "aud": audience,
            "ref": "refs/heads/main",
            "sha": "example-sha-d6e0f6b5a2c6f0c1",
            "repository": "acmecorp/inventory-service",
            "repository_owner": "acmecorp",
            "actor_id": "12",
            "repository_visibility": "private",
            "repository_id": "74",
            "repository_owner_id": "65",
            "run_id": "example-run-id",
            "run_number": "10",
            "run_attempt": "2",
            "runner_environment": "github-hosted",
            "actor": "octocat",
            "workflow": "deploy",
            "head_ref": "",
            "base_ref": "",
            "event_name": "push",
            "ref_type": "branch",
            "ref_protected": "true",
            "job_workflow_ref": "acmecorp/ci/.github/workflows/deploy.yml@refs/heads/main",
            "workflow_ref": (
                "acmecorp/inventory-service/.github/workflows/deploy.yml@refs/heads/main"
            ),
            "workflow_sha": "example-sha-d6e0f6b5a2c6f0c1",
            "iss": self.url,
            "nbf": now - 600,
            "exp": now + 300,
            "iat": now,
        }
        return _override(claims, overrides)

    def github_token(self, audience: str, **overrides: Any) -> str:
        return self.sign(self.github_claims(audience, **overrides))


def kubernetes_claims(issuer: str, audience: str, **overrides: Any) -> dict[str, Any]:
    """A projected service-account token's claims (Kubernetes 1.30): aud a list, the
    ``kubernetes.io`` object, one hour of life."""
    now = int(time.time())
    claims = {
        "aud": [audience],
        "exp": now + 3600,
        "iat": now,
        "iss": issuer,
        "jti": "5f0f4a3c-2e9b-4b1f-9f65-6c1b8d7e0a11",
        "kubernetes.io": {
            "namespace": "deploy",
            "node": {"name": "node-1", "uid": "1c6a0a51-6c9d-4d1d-a5a6-0b4e0e2f8b1a"},
            "pod": {"name": "deployer-7d9f8", "uid": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"},
            "serviceaccount": {"name": "deployer", "uid": "0d4e2f6a-1b3c-4d5e-8f9a-7b6c5d4e3f2a"},
        },
        "nbf": now,
        "sub": "system:serviceaccount:deploy:deployer",
    }
    return _override(claims, overrides)


def _override(claims: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims
