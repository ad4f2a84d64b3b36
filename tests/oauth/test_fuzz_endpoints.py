"""hypothesis against the OAuth endpoints: random forms, headers, encodings, methods, sizes.

Requests are raw WSGI environs (bytes as they come off the wire, invalid UTF-8 included) sent
to the production WSGI application, so both the fast path and Django answer them. Whatever the
input: never a 5xx, always JSON in the RFC 6749 §5.2 shape (``error`` from the registered
codes, ``error_description`` a string), and a success only with the right credentials.
Introspection and revocation are fuzzed the same way when they are routed.
"""

from __future__ import annotations

import base64
import io
import json
import os

import pytest
from django.urls import NoReverseMatch, reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from portal.serving.fastpath import TokenFastPath

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
RFC6749_ERRORS = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_target",
    "temporarily_unavailable",
    "unsupported_token_type",
}
NAMES = [
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "audience",
    "resource",
    "token",
    "token_type_hint",
    "client_assertion",
    "client_assertion_type",
]
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "application/x-www-form-urlencoded; charset=latin-1",
    "application/json",
    "multipart/form-data; boundary=x",
    "text/plain",
    "",
    "application/x-www-form-urlencoded; charset=\x00",
]

raw_text = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
    st.sampled_from(["", "client_credentials", "%", "%ff%fe", "a" * 5000, "\u2028", "=&="]),
)


@st.composite
def bodies(draw, creds: dict) -> bytes:
    """A form body: real or random names and values, raw bytes, or junk."""
    kind = draw(st.sampled_from(["valid", "form", "form", "bytes", "huge", "empty"]))
    if kind == "valid":
        # The right request plus one random extra parameter: reaches scopes, audience, signing.
        extra = draw(st.sampled_from(["scope", "audience", "resource", "x"]))
        value = draw(raw_text)
        from urllib.parse import urlencode

        return urlencode(
            {"grant_type": "client_credentials", **creds, extra: value},
            encoding="utf-8",
            errors="surrogatepass",
        ).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "huge":
        return b"client_secret=" + b"A" * draw(st.sampled_from([600, 70_000, 1_100_000]))
    if kind == "empty":
        return b""
    pairs = []
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.one_of(st.sampled_from(NAMES), raw_text))
        value = draw(st.one_of(raw_text, st.sampled_from([*creds.values(), "client_credentials"])))
        pairs.append((name, value))
    from urllib.parse import quote

    encoded = "&".join(f"{quote(n, safe='')}={quote(v, safe='')}" for n, v in pairs)
    if draw(st.booleans()):
        encoded = encoded.replace("%", draw(st.sampled_from(["%", "%%", "%zz", "%c3%28"])), 1)
    return encoded.encode("utf-8", "surrogatepass")


@st.composite
def authorizations(draw, creds: dict) -> str | None:
    kind = draw(st.sampled_from(["none", "none", "basic", "garbage", "bearer"]))
    if kind == "none":
        return None
    if kind == "basic":
        user = draw(st.sampled_from([creds["client_id"], "", ":"]) | raw_text)
        password = draw(st.sampled_from([creds["client_secret"], ""]) | raw_text)
        raw = f"{user}:{password}".encode("utf-8", "surrogatepass")
        return "Basic " + base64.b64encode(raw).decode()
    if kind == "bearer":
        return "Bearer " + draw(raw_text)
    return draw(raw_text)


def environ(method: str, path: str, body: bytes, content_type: str, auth, length) -> dict:
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "QUERY_STRING": "",
    }
    if content_type:
        env["CONTENT_TYPE"] = content_type
    if length == "right":
        env["CONTENT_LENGTH"] = str(len(body))
    elif length is not None:
        env["CONTENT_LENGTH"] = length
    if auth is not None:
        env["HTTP_AUTHORIZATION"] = auth.encode("utf-8", "surrogatepass").decode("latin-1")
    return env


def call(app, env) -> tuple[int, dict, bytes]:
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = int(status.split()[0]), dict(headers)

    body = b"".join(app(env, start_response))
    return seen["status"], seen["headers"], body


@pytest.fixture
def apps():
    """The production WSGI stack: the fast path in front of Django (and Django alone)."""
    from django.core.wsgi import get_wsgi_application

    from portal.serving.middleware import MalformedRequestGuard

    django_app = get_wsgi_application()
    return {
        "fast path": MalformedRequestGuard(TokenFastPath(django_app)),
        "django": MalformedRequestGuard(django_app),
    }


def endpoints() -> list[str]:
    found = []
    for name in ("oauth:token", "oauth:introspect", "oauth:revoke"):
        try:
            found.append(reverse(name))
        except NoReverseMatch:
            continue
    return found


def assert_rfc6749(status: int, headers: dict, body: bytes, path: str) -> None:
    assert status < 500, (status, body)
    if status == 200:
        return
    assert headers["Content-Type"].startswith("application/json"), (status, headers, body)
    payload = json.loads(body)
    assert payload["error"] in RFC6749_ERRORS, payload
    assert isinstance(payload.get("error_description", ""), str)
    if status == 401:
        assert "WWW-Authenticate" in headers


@pytest.mark.parametrize("which", ["fast path", "django"])
def test_fuzzed_requests_never_fail_the_endpoints(which, apps, guide_client, settings):
    settings.DEBUG = False
    settings.RATE_LIMIT_TOKEN_FAILURES = "1000000/m"
    settings.RATE_LIMIT_TOKEN_FAILURES_PER_IP = "1000000/m"
    settings.RATE_LIMIT_ARGON2_PER_IP = "1000000/m"
    app = apps[which]
    if which == "fast path":
        app.app.enabled = True
    creds = {"client_id": guide_client.client_id, "client_secret": guide_client.secret}
    paths = endpoints()
    counts = {"sent": 0, "ok": 0}

    @given(
        path=st.sampled_from(paths),
        method=st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "HEAD", "OPTIONS", "Ü"]),
        body=bodies(creds),
        content_type=st.sampled_from(CONTENT_TYPES),
        auth=authorizations(creds),
        length=st.sampled_from(["right", "right", None, "", "-1", "abc", "99999999999"]),
    )
    @hypothesis_settings(
        max_examples=EXAMPLES * 3, deadline=None, suppress_health_check=list(HealthCheck)
    )
    def run(path, method, body, content_type, auth, length):
        status, headers, answer = call(app, environ(method, path, body, content_type, auth, length))
        assert_rfc6749(status, headers, answer, path)
        counts["sent"] += 1
        counts["ok"] += status == 200

    run()
    print(f"{which}: {counts['sent']} fuzzed requests over {paths}, {counts['ok']} answered 200")
    assert counts["sent"] >= EXAMPLES


def test_the_fuzzer_reaches_success(apps, guide_client):
    """The generators do produce the right request, so the properties above are not vacuous."""
    body = (
        f"grant_type=client_credentials&client_id={guide_client.client_id}"
        f"&client_secret={guide_client.secret}"
    ).encode()
    env = environ("POST", "/oauth/token", body, CONTENT_TYPES[0], None, "right")
    status, _, answer = call(apps["django"], env)
    assert status == 200, answer
