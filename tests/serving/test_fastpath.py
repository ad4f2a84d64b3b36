"""portal.serving.fastpath.TokenFastPath in process: it answers token requests, hands on the rest.

The application behind it here records what reaches it, so that each test can tell which side
answered. (tests/e2e/test_token_server.py compares the fast path with Django over real servers.)
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import psycopg
import pytest
from django.db import connection
from django.test import RequestFactory

from portal.serving.fastpath import TokenFastPath, token_fast_path
from tests.conftest import FORM
from tests.dpop_proofs import ProofKey

# Transactional: the fast path closes connections the way Django's request signals do, which
# would end the test's wrapping transaction.
pytestmark = pytest.mark.django_db(transaction=True)


class Behind:
    """The application behind the fast path: records what it is asked and answers 418."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, environ, start_response):
        self.paths.append(environ["PATH_INFO"])
        start_response("418 I'm a teapot", [("Content-Type", "text/plain")])
        return [b"behind"]


def call(app, environ) -> tuple[str, dict, bytes]:
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], body


def token_environ(creds, **extra) -> dict:
    data = {
        "grant_type": "client_credentials",
        "client_id": creds.client_id,
        "client_secret": creds.secret,
    }
    return (
        RequestFactory()
        .post(
            "/oauth/token",
            urlencode(data),
            content_type=FORM,
            **{"HTTP_HOST": "127.0.0.1", **extra},
        )
        .environ
    )


def test_it_answers_a_token_request_without_django(guide_client):
    behind = Behind()
    status, headers, body = call(TokenFastPath(behind), token_environ(guide_client))
    assert behind.paths == []
    assert status == "200 OK"
    assert headers["Content-Length"] == str(len(body))
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-store"
    assert json.loads(body)["token_type"] == "Bearer"


def test_it_answers_errors_itself(guide_client):
    behind = Behind()
    environ = token_environ(guide_client)
    environ["REQUEST_METHOD"] = "GET"
    status, headers, _ = call(TokenFastPath(behind), environ)
    assert (status, headers["Allow"], behind.paths) == ("405 Method Not Allowed", "POST", [])


def test_other_paths_go_to_django(guide_client):
    behind = Behind()
    environ = token_environ(guide_client)
    environ["PATH_INFO"] = "/.well-known/jwks.json"
    assert call(TokenFastPath(behind), environ)[0].startswith("418")
    assert behind.paths == ["/.well-known/jwks.json"]


def test_a_host_outside_allowed_hosts_goes_to_django(guide_client):
    behind = Behind()
    assert call(TokenFastPath(behind), token_environ(guide_client, HTTP_HOST="evil.example"))[
        0
    ].startswith("418")
    assert behind.paths == ["/oauth/token"]


def test_a_plain_http_request_goes_to_django_when_https_is_required(guide_client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 3600
    behind = Behind()
    assert call(TokenFastPath(behind), token_environ(guide_client))[0].startswith("418")
    # A client that is not a trusted proxy cannot claim HTTPS.
    claimed = token_environ(guide_client, HTTP_X_FORWARDED_PROTO="https")
    assert call(TokenFastPath(behind), claimed)[0].startswith("418")
    assert behind.paths == ["/oauth/token", "/oauth/token"]
    settings.TRUSTED_PROXIES = ["127.0.0.1"]  # RequestFactory's REMOTE_ADDR
    secure = token_environ(guide_client, HTTP_X_FORWARDED_PROTO="https")
    status, headers, _ = call(TokenFastPath(behind), secure)
    assert status == "200 OK"
    assert headers["Strict-Transport-Security"] == "max-age=3600; includeSubDomains; preload"
    assert len(behind.paths) == 2


def test_it_is_off_in_debug_and_by_setting(guide_client, settings):
    settings.DEBUG = True
    behind = Behind()
    assert call(TokenFastPath(behind), token_environ(guide_client))[0].startswith("418")
    settings.DEBUG = False
    settings.OAUTH = {**settings.OAUTH, "TOKEN_FAST_PATH": False}
    assert token_fast_path(behind) is None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="kills a PostgreSQL backend")
def test_a_connection_dropped_between_requests_is_replaced_not_a_503(guide_client):
    fast_path = TokenFastPath(Behind())
    assert call(fast_path, token_environ(guide_client))[0] == "200 OK"
    # The database drops this thread's connection (as on a restart) right after an answer, when
    # the fast path skips the health check because the connection has just worked.
    pid = connection.connection.info.backend_pid
    with psycopg.connect(**connection.get_connection_params()) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    status, _, body = call(fast_path, token_environ(guide_client))
    assert status == "200 OK", body
    assert connection.connection.info.backend_pid != pid


def test_a_dpop_proof_names_the_uri_the_client_used_behind_a_trusted_proxy(guide_client, settings):
    """RFC 9449 §4.3 htu on the fast path: the scheme a trusted proxy reports, the Host; an
    untrusted peer's X-Forwarded-Proto changes nothing."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    key = ProofKey.es256()
    https_proof = key.proof("POST", "https://127.0.0.1/oauth/token")
    untrusted = token_environ(guide_client, HTTP_X_FORWARDED_PROTO="https", HTTP_DPOP=https_proof)
    status, _, body = call(TokenFastPath(Behind()), untrusted)
    assert status.startswith("400") and json.loads(body)["error"] == "invalid_dpop_proof"
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    trusted = token_environ(guide_client, HTTP_X_FORWARDED_PROTO="https", HTTP_DPOP=https_proof)
    status, _, body = call(TokenFastPath(Behind()), trusted)
    assert status == "200 OK", body
    assert json.loads(body)["token_type"] == "DPoP"
    plain = token_environ(guide_client, HTTP_DPOP=key.proof("POST", "http://127.0.0.1/oauth/token"))
    assert json.loads(call(TokenFastPath(Behind()), plain)[2])["token_type"] == "DPoP"
