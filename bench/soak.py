"""Sustained load (not in CI): the token endpoint and the management API together, for a while.

    python bench/soak.py [--seconds 60] [--processes 4]

Starts gunicorn (gunicorn.conf.py: gthread, one worker per core) on PostgreSQL (database
``m2m_soak``, created when missing; BENCH_PG_URL overrides the server) and drives it from several
processes, each alternating a token request (client_secret_post) with a management API call
(list clients, read the organization, add and delete a secret). Prints requests, errors and
p50/p99 per kind, and exits non-zero on any error. The management client's rate limit is raised
for the run (RATE_LIMIT_API), since one client makes every API call here.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import jwt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server import PYTHON, ROOT, base_env, ensure_pg_database, free_port

PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/m2m_bench")
SOAK_URL = PG_URL.rsplit("/", 1)[0] + "/m2m_soak"


def manage(env: dict, *args: str) -> str:
    return subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout


def worker(port: int, setup: dict, seconds: float, out: multiprocessing.Queue) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    token_body = urlencode({"grant_type": "client_credentials", **setup["client"]}).encode()
    api_headers = {
        "Authorization": f"Bearer {setup['api_token']}",
        "Content-Type": "application/json",
    }
    org, cid = setup["organization_id"], setup["client_id"]
    api_calls = [
        ("GET", f"/api/v1/organizations/{org}/clients", None),
        ("GET", f"/api/v1/organizations/{org}", None),
        ("POST", f"/api/v1/organizations/{org}/clients/{cid}/secrets", b""),
    ]
    times: dict[str, list[float]] = {"token": [], "api": []}
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
        if n % 2:
            kind, method, path, body, headers = (
                "token",
                "POST",
                "/oauth/token",
                token_body,
                {"Content-Type": "application/x-www-form-urlencoded"},
            )
        else:
            method, path, body = api_calls[(n // 2) % len(api_calls)]
            kind, headers = "api", api_headers
        start = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            errors.append(f"{kind} {exc!r}")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        times[kind].append(time.perf_counter() - start)
        if response.status >= 300:
            errors.append(f"{kind} {method} {path} {response.status} {payload[:120]!r}")
        elif method == "POST" and kind == "api":
            # Keep the client at one spare secret: delete the one just added.
            secret_id = json.loads(payload)["secret"]["id"]
            conn.request("DELETE", f"{path}/{secret_id}", headers=api_headers)
            deleted = conn.getresponse()
            deleted.read()
            if deleted.status != 200:
                errors.append(f"api DELETE {deleted.status}")
    out.put((times, errors))


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--processes", type=int, default=4)
    args = parser.parse_args()

    ensure_pg_database(SOAK_URL)
    env = base_env(SOAK_URL, RATE_LIMIT_API="1000000/m", OAUTH_ISSUER="http://127.0.0.1")
    manage(env, "migrate", "--noinput")
    manage(env, "bootstrap")
    management = json.loads(manage(env, "create_management_client", "--name", "soak"))
    client = json.loads(
        subprocess.run(
            [PYTHON, "bench/make_client.py"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    port = free_port()
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"soak-{port}.log"
    server = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gunicorn",
            "-c",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        # A file, not a pipe: nobody reads a pipe during the run, and a full one blocks gunicorn.
        stderr=open(log_path, "w"),  # noqa: SIM115
    )
    try:
        for _ in range(100):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                break
            except OSError:
                time.sleep(0.2)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request(
            "POST",
            "/oauth/token",
            body=urlencode({"grant_type": "client_credentials", **management}),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        api_token = json.loads(conn.getresponse().read())["access_token"]
        # The client's organization: the "oid" claim of one of its tokens.
        conn.request(
            "POST",
            "/oauth/token",
            body=urlencode({"grant_type": "client_credentials", **client}),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        client_token = json.loads(conn.getresponse().read())["access_token"]
        org = {"id": jwt.decode(client_token, options={"verify_signature": False})["oid"]}
        setup = {
            "client": client,
            "api_token": api_token,
            "organization_id": org["id"],
            "client_id": client["client_id"],
        }
        out: multiprocessing.Queue = multiprocessing.Queue()
        procs = [
            multiprocessing.Process(target=worker, args=(port, setup, args.seconds, out))
            for _ in range(args.processes)
        ]
        started = time.monotonic()
        for proc in procs:
            proc.start()
        results = [out.get() for _ in procs]
        for proc in procs:
            proc.join()
        elapsed = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
    all_errors = [e for _, errors in results for e in errors]
    print(f"soak: {args.seconds:.0f} s, {args.processes} processes, gunicorn on PostgreSQL")
    total = 0
    for kind in ("token", "api"):
        values = [t for times, _ in results for t in times[kind]]
        total += len(values)
        print(
            f"  {kind:5}: {len(values):7d} requests  {len(values) / elapsed:8.1f}/s  "
            f"p50 {statistics.median(values) * 1000:7.2f} ms  "
            f"p99 {percentile(values, 0.99):7.2f} ms"
        )
    print(f"  total: {total} requests, {len(all_errors)} errors (server log: {log_path})")
    for error in all_errors[:10]:
        print(f"    {error}")
    sys.exit(1 if all_errors else 0)


if __name__ == "__main__":
    main()
