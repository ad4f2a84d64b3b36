"""A local stand-in for GitHub's secret scanning: its published keys (GitHub's own format, on a
real HTTP server on 127.0.0.1) and alerts signed as GitHub signs them (ECDSA P-256, SHA-256 over
the raw body, base64 DER in ``Github-Public-Key-Signature``)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.oidc_issuer import LocalServer

KEYS_PATH = "/meta/public_keys/secret_scanning"


class GitHub:
    """Signs alerts with ``key_id``'s key; ``publish()`` serves the keys it should publish."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self.key_id = self.add_key()
        self.publish()

    @property
    def keys_url(self) -> str:
        return self.server.url + KEYS_PATH

    def add_key(self) -> str:
        key = ec.generate_private_key(ec.SECP256R1())
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        key_id = hashlib.sha256(der).hexdigest()
        self.keys[key_id] = key
        return key_id

    def publish(self, only: list[str] | None = None) -> None:
        entries = [
            {
                "key_identifier": key_id,
                "key": key.public_key()
                .public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                .decode(),
                "is_current": key_id == self.key_id,
            }
            for key_id, key in self.keys.items()
            if only is None or key_id in only
        ]
        body = json.dumps({"public_keys": entries}).encode()
        self.server.routes[KEYS_PATH] = (200, {"Content-Type": "application/json"}, body)

    def sign(self, body: bytes, key_id: str | None = None) -> dict[str, str]:
        key_id = key_id or self.key_id
        signature = self.keys[key_id].sign(body, ec.ECDSA(hashes.SHA256()))
        return {
            "HTTP_GITHUB_PUBLIC_KEY_IDENTIFIER": key_id,
            "HTTP_GITHUB_PUBLIC_KEY_SIGNATURE": base64.b64encode(signature).decode(),
        }

    @staticmethod
    def alert(*tokens: str, url: str = "https://github.com/octo/app/blob/abc/config.py") -> bytes:
        matches: list[dict[str, Any]] = [
            {"token": token, "type": "m2m_client_secret", "url": url, "source": "content"}
            for token in tokens
        ]
        return json.dumps(matches).encode()

    def keys_fetches(self) -> int:
        return self.server.paths.count(KEYS_PATH)
