"""POST /oauth/token over a real gunicorn process: the WSGI fast path answers like the Django view.

Two servers run gunicorn.conf.py on free ports against one database of their own: one with the
fast path (the default), one with OAUTH_TOKEN_FAST_PATH=false, where Django's view answers. Each
input is sent to both and the answers are compared header by header.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import jwt
import pytest

from tests.e2e.server import ServerProcess, server_database

pytestmark = pytest.mark.e2e

FORM = "application/x-www-form-urlencoded"
# Per-response headers that differ between two servers answering at different moments.
VOLATILE = {"date", "server"}

MAKE_CLIENT = """
import json
from clients.services import Actor, client_create, organization_create
actor = Actor.system("e2e")
org = organization_create(actor=actor, display_name="E2E")
client, secret = client_create(
    actor=actor, organization=org, name="e2e", scopes=["read", "write"], audience=["api-a"]
)
print(json.dumps({"client_id": client.id, "client_secret": secret}))
"""
# Both servers issue tokens for one issuer, so that their answers compare.
ISSUER = "http://127.0.0.1"


def access_line(server: ServerProcess, request_id: str) -> dict:
    """The access-log line of the request with this X-Request-ID (JSON logs)."""
    deadline = time.monotonic() + 5
    while True:
        for line in server.log_text().splitlines():
            if line.startswith("{") and '"portal.access"' in line:
                record = json.loads(line)
                if record.get("request_id") == request_id:
                    return record
        assert time.monotonic() < deadline, f"no access line for {request_id}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[dict]:
    logs = tmp_path_factory.mktemp("token-server-logs")
    with server_database(logs) as database:
        env = {"OAUTH_ISSUER": ISSUER, "LOG_FORMAT": "json"}
        fast = ServerProcess(database, extra_env=env)
        view = ServerProcess(database, extra_env={**env, "OAUTH_TOKEN_FAST_PATH": "false"})
        made = fast.prepare().manage("shell", "-c", MAKE_CLIENT)
        client = json.loads(made.stdout.strip().splitlines()[-1])
        try:
            # Each worker says which path serves tokens (gunicorn.conf.py): make sure the
            # comparison below is between the two.
            fast.serve(logs, workers=1).wait_for_log("token endpoint: fast path")
            view.serve(logs, workers=1).wait_for_log("token endpoint: Django view")
            yield {"fast": fast, "view": view, "client": client}
        finally:
            fast.stop()
            view.stop()


def send(port: int, method: str, body: bytes = b"", headers: dict | None = None) -> tuple:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, "/oauth/token", body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


def form(**fields: str) -> tuple[bytes, dict]:
    return urlencode(fields).encode(), {"Content-Type": FORM}


def credentials(client: dict) -> dict:
    return {"client_id": client["client_id"], "client_secret": client["client_secret"]}


def test_it_issues_a_token_that_verifies_through_the_jwks(servers):
    body, headers = form(grant_type="client_credentials", **credentials(servers["client"]))
    status, response_headers, data = send(servers["fast"].port, "POST", body, headers)
    assert status == 200, data
    assert response_headers["content-type"] == "application/json"
    assert response_headers["cache-control"] == "no-store"
    assert response_headers["x-content-type-options"] == "nosniff"
    answer = json.loads(data)
    assert answer["token_type"] == "Bearer" and answer["scope"] == "read write"
    conn = http.client.HTTPConnection("127.0.0.1", servers["fast"].port, timeout=10)
    conn.request("GET", "/.well-known/jwks.json")
    jwks = json.loads(conn.getresponse().read())
    conn.close()
    kid = jwt.get_unverified_header(answer["access_token"])["kid"]
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid)).key
    claims = jwt.decode(
        answer["access_token"],
        key,
        algorithms=["RS256"],
        audience="api-a",
        issuer=ISSUER,
    )
    assert claims["client_id"] == servers["client"]["client_id"]


def test_a_wrong_secret_is_invalid_client(servers):
    body, headers = form(
        grant_type="client_credentials",
        client_id=servers["client"]["client_id"],
        client_secret="test_wrong",
    )
    status, response_headers, data = send(servers["fast"].port, "POST", body, headers)
    assert status == 401
    assert json.loads(data)["error"] == "invalid_client"
    assert response_headers["www-authenticate"].startswith("Basic")


def test_other_methods_are_405(servers):
    status, response_headers, data = send(servers["fast"].port, "GET")
    assert status == 405
    assert response_headers["allow"] == "POST"
    assert json.loads(data)["error"] == "invalid_request"


def basic(client: dict, secret: str | None = None) -> str:
    raw = f"{client['client_id']}:{secret or client['client_secret']}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def requests_to_compare(client: dict) -> dict[str, tuple[str, bytes, dict]]:
    grant = {"grant_type": "client_credentials"}
    good = urlencode({**grant, **credentials(client)}).encode()
    return {
        "client_secret_post": ("POST", good, {"Content-Type": FORM}),
        "client_secret_basic": (
            "POST",
            urlencode(grant).encode(),
            {"Content-Type": FORM, "Authorization": basic(client)},
        ),
        "charset": ("POST", good, {"Content-Type": FORM + "; charset=UTF-8"}),
        "narrowed scope": (
            "POST",
            urlencode({**grant, **credentials(client), "scope": "write"}).encode(),
            {"Content-Type": FORM},
        ),
        "wrong secret": (
            "POST",
            urlencode({**grant, **credentials(client), "client_secret": "x"}).encode(),
            {"Content-Type": FORM},
        ),
        "wrong basic secret": (
            "POST",
            urlencode(grant).encode(),
            {"Content-Type": FORM, "Authorization": basic(client, "nope")},
        ),
        "bearer": (
            "POST",
            urlencode(grant).encode(),
            {"Content-Type": FORM, "Authorization": "Bearer x"},
        ),
        "no credentials": ("POST", urlencode(grant).encode(), {"Content-Type": FORM}),
        "unsupported grant": (
            "POST",
            urlencode({**credentials(client), "grant_type": "password"}).encode(),
            {"Content-Type": FORM},
        ),
        "missing grant": ("POST", urlencode(credentials(client)).encode(), {"Content-Type": FORM}),
        "repeated parameter": (
            "POST",
            good + b"&grant_type=client_credentials",
            {"Content-Type": FORM},
        ),
        "unknown scope": (
            "POST",
            urlencode({**grant, **credentials(client), "scope": "admin"}).encode(),
            {"Content-Type": FORM},
        ),
        "unknown audience": (
            "POST",
            urlencode({**grant, **credentials(client), "audience": "evil"}).encode(),
            {"Content-Type": FORM},
        ),
        "json body": (
            "POST",
            json.dumps({**grant, **credentials(client)}).encode(),
            {"Content-Type": "application/json"},
        ),
        "not utf-8": ("POST", good + b"&x=%FF", {"Content-Type": FORM}),
        "oversized body": ("POST", good + b"&pad=" + b"x" * (1024 * 1024), {"Content-Type": FORM}),
        "GET": ("GET", b"", {}),
        "PUT": ("PUT", good, {"Content-Type": FORM}),
        "disallowed host": ("POST", good, {"Content-Type": FORM, "Host": "evil.example"}),
        # Decoys (issue 17): read by the fast path exactly as by the view. An unknown client_id
        # for the wrong secrets, so that they do not count against the real one.
        "assertion name as a value": (
            "POST",
            b"grant_type=client_credentials&client_id=m2m_nobody&client_secret=x"
            b"&x=client_assertion",
            {"Content-Type": FORM},
        ),
        "encoded secret name": (
            "POST",
            urlencode({**grant, "client_id": client["client_id"]}).encode()
            + b"&client%5Fsecret="
            + client["client_secret"].encode(),
            {"Content-Type": FORM},
        ),
        "secret and assertion": (
            "POST",
            good + b"&client%5Fassertion=a.b.c",
            {"Content-Type": FORM},
        ),
    }


@pytest.mark.parametrize("case", list(requests_to_compare({"client_id": "", "client_secret": ""})))
def test_the_fast_path_answers_and_logs_like_the_django_view(servers, case):
    method, body, headers = requests_to_compare(servers["client"])[case]
    request_id = f"e2e-{case.replace(' ', '-')}-{time.monotonic_ns()}"
    headers = {**headers, "X-Request-ID": request_id}
    fast_status, fast_headers, fast_body = send(servers["fast"].port, method, body, headers)
    view_status, view_headers, view_body = send(servers["view"].port, method, body, headers)
    assert fast_status == view_status, (fast_body, view_body)
    assert fast_headers["x-request-id"] == request_id
    if case != "disallowed host":  # Django refuses it before the access log middleware answers
        fast_line, view_line = (access_line(servers[side], request_id) for side in ("fast", "view"))
        for line in (fast_line, view_line):
            del line["time"], line["duration_ms"]
            line["message"] = line["message"].rsplit(" ", 1)[0]  # "POST /oauth/token 200 1.2ms"
        assert fast_line == view_line
    for name in VOLATILE:
        fast_headers.pop(name, None)
        view_headers.pop(name, None)
    if fast_status != 200:
        assert fast_headers == view_headers
        assert fast_body == view_body
        return
    # A token differs in its jti and times (and so in length and signature): compare the rest.
    fast_headers.pop("content-length"), view_headers.pop("content-length")
    assert fast_headers == view_headers
    fast, view = json.loads(fast_body), json.loads(view_body)
    fast_token, view_token = fast.pop("access_token"), view.pop("access_token")
    assert fast == view
    assert jwt.get_unverified_header(fast_token) == jwt.get_unverified_header(view_token)
    volatile_claims = {"jti", "iat", "nbf", "exp"}
    fast_claims = jwt.decode(fast_token, options={"verify_signature": False})
    view_claims = jwt.decode(view_token, options={"verify_signature": False})
    assert fast_claims.keys() == view_claims.keys()
    assert {k: v for k, v in fast_claims.items() if k not in volatile_claims} == {
        k: v for k, v in view_claims.items() if k not in volatile_claims
    }


def test_one_keep_alive_connection_carries_token_and_django_requests(servers):
    """The production server's two paths (event loop, thread pool) share a connection cleanly."""
    body, headers = form(grant_type="client_credentials", **credentials(servers["client"]))
    conn = http.client.HTTPConnection("127.0.0.1", servers["fast"].port, timeout=10)
    try:
        for method, path, data in [
            ("POST", "/oauth/token", body),
            ("GET", "/.well-known/jwks.json", None),
            ("POST", "/oauth/token", body),
            ("GET", "/.well-known/oauth-authorization-server", None),
            ("POST", "/oauth/token", body),
        ]:
            conn.request(method, path, body=data, headers=headers if data else {})
            response = conn.getresponse()
            answer = json.loads(response.read())
            assert response.status == 200, answer
            assert ("access_token" in answer) == (path == "/oauth/token")
        # A chunked body (no Content-Length) on the same connection.
        conn.putrequest("POST", "/oauth/token")
        conn.putheader("Content-Type", FORM)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        half = len(body) // 2
        for part in (body[:half], body[half:]):
            conn.send(b"%x\r\n%s\r\n" % (len(part), part))
        conn.send(b"0\r\n\r\n")
        response = conn.getresponse()
        assert response.status == 200 and "access_token" in json.loads(response.read())
    finally:
        conn.close()


DECOYS = [
    b"grant_type=client_credentials&client_id={id}&client_secret=wrong&x=client_assertion",
    b"grant_type=client_credentials&client_id={id}&client%5Fsecret=wrong",
    b"grant_type=client_credentials&client%5Fid={id}&client%5Fsecret=wrong",
    b"grant_type=client_credentials&client_id={id}&client_secret=wrong&pad=client_assertion_type",
]


@pytest.fixture(scope="module")
def argon2_server(tmp_path_factory) -> Iterator[dict]:
    """One worker, argon2 at a production-like cost, limits out of the way: every wrong
    secret below costs a real argon2 check."""
    logs = tmp_path_factory.mktemp("decoy-server")
    with server_database(logs) as database:
        server = ServerProcess(
            database,
            extra_env={
                "OAUTH_ARGON2_TIME_COST": "2",
                "OAUTH_ARGON2_MEMORY_COST": "65536",
                "RATE_LIMIT_TOKEN_FAILURES": "100000/m",
                "RATE_LIMIT_TOKEN_FAILURES_PER_IP": "100000/m",
            },
        )
        made = server.prepare().manage("shell", "-c", MAKE_CLIENT)
        client = json.loads(made.stdout.strip().splitlines()[-1])
        try:
            server.serve(logs, workers=1)
            yield {"server": server, "client": client}
        finally:
            server.stop()


def test_decoy_bodies_with_wrong_secrets_do_not_stall_a_verified_client(argon2_server):
    """Several connections send wrong secrets in decoy bodies (each an argon2 check, in the
    pool); meanwhile a client whose secret the worker has verified gets every token, from the
    event loop. The latencies are printed for the record (bench/ measures speed), not asserted."""
    server, client = argon2_server["server"], argon2_server["client"]
    body, headers = form(grant_type="client_credentials", **credentials(client))

    def verified_client(count: int) -> list[float]:
        latencies = []
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            for _ in range(count):
                start = time.perf_counter()
                conn.request("POST", "/oauth/token", body=body, headers=headers)
                response = conn.getresponse()
                answer = json.loads(response.read())
                latencies.append(time.perf_counter() - start)
                assert response.status == 200, answer
        finally:
            conn.close()
        return latencies

    quiet = verified_client(50)  # the first one verifies the secret (argon2, in the pool)
    stop = threading.Event()
    refused: list[int] = []

    def attacker(number: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:
            while not stop.is_set():
                for decoy in DECOYS:
                    # Another client_id each time: no verification is ever cached for it.
                    decoy_body = decoy.replace(b"{id}", f"m2m_x{number}_{len(refused)}".encode())
                    conn.request("POST", "/oauth/token", body=decoy_body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    refused.append(response.status)
        finally:
            conn.close()

    attackers = [threading.Thread(target=attacker, args=(n,)) for n in range(8)]
    for thread in attackers:
        thread.start()
    try:
        while len(refused) < 16:  # the flood is on
            time.sleep(0.05)
        attacked = verified_client(100)
    finally:
        stop.set()
        for thread in attackers:
            thread.join(60)
    assert set(refused) == {401}, set(refused)

    def summary(latencies: list[float]) -> str:
        ordered = sorted(latencies)
        pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
        return f"p50 {pick(0.5):.1f} ms, p90 {pick(0.9):.1f} ms, max {ordered[-1] * 1000:.1f} ms"

    print(f"\nverified client, quiet: {summary(quiet[1:])}")
    print(f"verified client, 8 connections of decoys: {summary(attacked)} ({len(refused)} decoys)")
