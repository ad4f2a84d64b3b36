"""The token endpoint benchmark: ``make bench`` (or ``python bench/run.py``).

For SQLite (a temp file) and PostgreSQL (BENCH_PG_URL, default database m2m_bench, created when
missing) it starts the production server (gunicorn with gunicorn.conf.py) on 127.0.0.1 on a free
port and prints:

- the machine's ceiling: ``openssl speed rsa2048`` signatures per second times the cores;
- cold first-request latency of fresh secrets (argon2id with the production parameters);
- single-client warm latency (median, p99; bench/latency.py does the same on its own);
- ``wrk`` + bench/token.lua at each concurrency: tokens/s, p50/p99, failures (any answer that is
  not a 200 with an access_token), and the ratio of tokens/s to the ceiling;
- DPoP-bound tokens (bench/token_dpop.lua: a fresh ES256 proof per request, signed beforehand)
  beside bearer ones, at the highest concurrency, on the same server;
- with Redis (BENCH_REDIS_URL, default db 9), the load client without and then with an enforced
  token quota (issue 20), at the highest concurrency, back to back;
- ES256 beside RS256, and the plain Django view (OAUTH_TOKEN_FAST_PATH=false), at the highest
  concurrency;
- the resident memory (RSS) of each gunicorn worker after the load;
- with ``--scale``: token latency and throughput on PostgreSQL seeded with 10,000 organizations
  and 100,000 clients (bench/seed_scale.py) beside the empty database, and the client list page;
- JWT verification figures from bench/verify_bench.py, when that file exists.

Environment knobs: BENCH_DURATION (s, default 10), BENCH_CONCURRENCY (default 1,8,32),
BENCH_DBS (default sqlite,postgres), BENCH_LATENCY_N (default 2000), BENCH_WRK_THREADS (default 1:
the load generator shares the 2 cores with the server), and every GUNICORN_* of gunicorn.conf.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server import (
    BENCH_SECRET_KEY,
    PG_URL,
    PYTHON,
    ROOT,
    Database,
    Server,
    cold_latency_ms,
    database,
    gunicorn,
    machine_busy_seconds,
    postgres_cpu_seconds,
    sequential_latency,
)

BENCH = Path(__file__).resolve().parent
# Proofs signed per second of a DPoP run: more than the server can use (a proof is good once).
DPOP_PROOFS_PER_SECOND = 4000


def openssl_sign_per_second(algorithm: str, seconds: int = 3) -> float:
    """Signatures per second of one core, from ``openssl speed`` (rsa2048 or ecdsap256)."""
    out = subprocess.run(
        ["openssl", "speed", "-seconds", str(seconds), algorithm],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    header = next(line for line in out.splitlines() if "sign/s" in line).split()
    row_re = r"^\s*rsa\s+2048 bits" if algorithm == "rsa2048" else r"^\s*256 bits ecdsa"
    row = next(line for line in out.splitlines() if re.match(row_re, line))
    # The row ends with as many numbers as the header has columns; take the sign/s one.
    numbers = row.split()[-len(header) :]
    return float(numbers[header.index("sign/s")])


def run_wrk(
    server: Server,
    client: dict[str, str],
    connections: int,
    duration: int,
    script: str = "token.lua",
    extra_env: dict[str, str] | None = None,
) -> dict:
    threads = min(connections, int(os.environ.get("BENCH_WRK_THREADS", "1")))
    env = {
        **os.environ,
        "BENCH_CLIENT_ID": client["client_id"],
        "BENCH_CLIENT_SECRET": client["client_secret"],
        "BENCH_ASSERTION": client.get("assertion", ""),
        "BENCH_WRK_THREADS_N": str(threads),
        "BENCH_TOKEN_LUA": str(BENCH / "token.lua"),
        **(extra_env or {}),
    }
    cpu_before = server.worker_cpu_seconds()
    database_before = postgres_cpu_seconds()
    machine_before = machine_busy_seconds()
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "5s",
            "-s",
            str(BENCH / script),
            server.url,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH_RESULT "))
    result = json.loads(line.removeprefix("BENCH_RESULT "))
    # Server CPU per token does not depend on what else runs on the machine, unlike tokens/s.
    result["cpu_us_per_token"] = (
        1e6 * (server.worker_cpu_seconds() - cpu_before) / max(result["requests"], 1)
    )
    # Where the rest goes: PostgreSQL's own processes, and the whole machine (workers, database,
    # wrk, kernel), per request.
    requests = max(result["requests"], 1)
    result["database_cpu_us"] = 1e6 * (postgres_cpu_seconds() - database_before) / requests
    result["machine_cpu_us"] = 1e6 * (machine_busy_seconds() - machine_before) / requests
    result["tokens_per_s"] = result["ok"] / (result["duration_us"] / 1e6)
    result["errors"] = result["failed"] + result["socket_errors"]
    return result


def dpop_proofs(url: str, count: int, path: Path) -> None:
    """``count`` DPoP proofs (ES256, one key) for POST ``url``, one a line, signed now: their
    iat stays inside the server's 60 s window for a run of some seconds."""
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = jwt.get_algorithm_by_name("ES256").to_jwk(key.public_key(), as_dict=True)
    now = int(time.time())
    with path.open("w") as out:
        for number in range(count):
            claims = {"jti": f"bench-{now}-{number}", "htm": "POST", "htu": url, "iat": now}
            header = {"typ": "dpop+jwt", "jwk": jwk}
            out.write(jwt.encode(claims, key, algorithm="ES256", headers=header) + "\n")


def run_wrk_dpop(server: Server, client: dict[str, str], connections: int, duration: int) -> dict:
    """As ``run_wrk``, every token request with a fresh DPoP proof (a DPoP-bound token each)."""
    with tempfile.TemporaryDirectory() as tmp:
        proofs = Path(tmp) / "proofs"
        dpop_proofs(f"{server.url}/oauth/token", DPOP_PROOFS_PER_SECOND * duration, proofs)
        return run_wrk(
            server,
            client,
            connections,
            duration,
            "token_dpop.lua",
            {"BENCH_DPOP_PROOFS": str(proofs)},
        )


def describe(label: str, result: dict, ceiling: float) -> str:
    text = (
        f"  {label}: {result['tokens_per_s']:8.1f} tokens/s  p50 {result['p50_us'] / 1000:6.2f} ms"
        f"  p99 {result['p99_us'] / 1000:6.2f} ms  requests {result['requests']}"
        f"  server CPU {result['cpu_us_per_token']:5.0f} us/request"
        f" (PostgreSQL {result['database_cpu_us']:4.0f}, machine {result['machine_cpu_us']:5.0f})"
        f"  errors {result['errors']} (non-200 or no token {result['failed']},"
        f" socket {result['socket_errors']})  {100 * result['tokens_per_s'] / ceiling:5.1f}%"
        " of the RSA ceiling"
    )
    if result["first_failure"]:
        text += f"\n    first failure: {result['first_failure']}"
    return text


def bench_database(label: str, args: argparse.Namespace, ceiling: float) -> dict:
    print(f"\n== {label} ==", flush=True)
    summary: dict = {"db": label}
    with database(label, BENCH_SECRET_KEY) as db:
        clients = db.make_clients(count=4, algorithm="RS256")
        load_client, cold_clients = clients[0], clients[1:]
        with gunicorn(db) as server:
            print(
                f"gunicorn: {len(server.worker_pids())} workers "
                f"({os.environ.get('GUNICORN_WORKER_CLASS', 'gunicorn.conf.py default')},"
                f" {os.environ.get('GUNICORN_APP', 'default app')},"
                f" HTTP parser {os.environ['GUNICORN_HTTP_PARSER']}),"
                f" port {server.port}"
            )
            colds = [cold_latency_ms(server.port, client) for client in cold_clients]
            print(
                "cold first request of a fresh secret (argon2id): "
                + ", ".join(f"{ms:.1f} ms ({status})" for status, ms in colds)
            )
            summary["cold_ms"] = max(ms for _, ms in colds)
            latency = sequential_latency(server.port, load_client, n=args.latency_n)
            print(
                f"single client, warm, n={latency['n']}: median {latency['median_ms']:.2f} ms"
                f"  p99 {latency['p99_ms']:.2f} ms  failures {latency['failures']}"
            )
            summary["latency"] = latency
            print(f"wrk, {args.duration} s each, RS256:")
            for connections in args.concurrency:
                result = run_wrk(server, load_client, connections, args.duration)
                print(describe(f"c={connections:<3d}", result, ceiling), flush=True)
                summary[f"rs256_c{connections}"] = result
            rss = server.worker_rss_mib()
            print("worker RSS after the run: " + ", ".join(f"{mib:.1f} MiB" for mib in rss))
            summary["rss_mib"] = rss
            top = max(args.concurrency)
            # The same server and client, every request with a DPoP proof: the bound tokens'
            # rate beside the bearer tokens' above (the proof check, its jti written once).
            result = run_wrk_dpop(server, load_client, top, args.duration)
            print(describe(f"DPoP c={top:<3d}", result, ceiling), flush=True)
            summary["dpop"] = result
        top = max(args.concurrency)
        with gunicorn(db, OAUTH_TOKEN_FAST_PATH="false") as server:
            result = run_wrk(server, load_client, top, args.duration)
            print(describe(f"Django view, no fast path, c={top:<3d}", result, ceiling), flush=True)
            summary["view"] = result
        summary["quota"] = quota(db, load_client, args, ceiling)
        es_top = es256(db, load_client, args, ceiling)
        summary["es256"] = es_top
        summary["federated"] = federated(db, args, ceiling)
    return summary


def federated(db: Database, args: argparse.Namespace, ceiling: float) -> dict:
    """The jwt-bearer grant with an external workload token (a static-JWKS trust policy) at
    the highest concurrency, beside the secret grant's line: its extra cost is the external
    token's signature check and the audit event naming the policy."""
    (client,) = db.make_clients(count=1, algorithm="RS256", federated=True)
    with gunicorn(db) as server:
        top = max(args.concurrency)
        result = run_wrk(server, client, top, args.duration)
        print(describe(f"federated jwt-bearer c={top:<3d}", result, ceiling), flush=True)
    return result


QUOTA_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
SET_QUOTA = (
    "from clients.models import ApiClient\n"
    "from clients.services import Actor, client_update\n"
    "client_update(actor=Actor.system('bench'), client=ApiClient.objects.get(pk={client_id!r}),"
    " token_quota={quota!r})"
)


def quota(db: Database, client: dict[str, str], args: argparse.Namespace, ceiling: float) -> dict:
    """Token quotas (issue 20) at the highest concurrency, both servers with REDIS_URL: first the
    client without a quota, then with an enforced one (per hour and per day, too large to refuse:
    one pipelined INCR/EXPIRE round trip to Redis per token), back to back in the same minutes."""
    top = max(args.concurrency)
    out = {}
    try:
        for label, value in (
            ("without", None),
            ("with", {"per_hour": 10**8, "per_day": 10**9, "mode": "enforce"}),
        ):
            db.manage("shell", "-c", SET_QUOTA.format(client_id=client["client_id"], quota=value))
            with gunicorn(db, REDIS_URL=QUOTA_REDIS_URL) as server:
                result = run_wrk(server, client, top, args.duration)
                print(describe(f"Redis, {label} a quota c={top:<3d}", result, ceiling), flush=True)
            out[label] = result
    finally:
        db.manage("shell", "-c", SET_QUOTA.format(client_id=client["client_id"], quota=None))
    return out


def es256(db: Database, client: dict[str, str], args: argparse.Namespace, ceiling: float) -> dict:
    """Rotate to an ES256 key, measure the highest concurrency, and rotate back to RS256."""
    db.manage("rotate_signing_key", "--algorithm", "ES256")
    try:
        with gunicorn(db) as server:
            top = max(args.concurrency)
            result = run_wrk(server, client, top, args.duration)
            print(describe(f"ES256 c={top:<3d}", result, ceiling), flush=True)
    finally:
        db.manage("rotate_signing_key", "--algorithm", "RS256")
    return result


def bench_scale(args: argparse.Namespace, ceiling: float) -> None:
    """PostgreSQL with 10,000 organizations and 100,000 clients beside the empty database."""
    print("\n== scale: PostgreSQL, empty vs 10,000 organizations / 100,000 clients ==", flush=True)
    scale_url = os.environ.get("BENCH_PG_SCALE_URL", PG_URL + "_scale")
    top = max(args.concurrency)
    figures = {}
    for label, url in (("empty", PG_URL), ("seeded", scale_url)):
        with database(url, BENCH_SECRET_KEY) as db:
            if label == "seeded":
                out = subprocess.run(
                    [PYTHON, "bench/seed_scale.py"],
                    cwd=ROOT,
                    env=db.env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                print(out.rstrip())
                client = json.loads(out.strip().splitlines()[-1])
            else:
                client = db.make_clients(algorithm="RS256")[0]
            with gunicorn(db) as server:
                latency = sequential_latency(server.port, client, n=args.latency_n)
                result = run_wrk(server, client, top, args.duration)
            figures[label] = (latency, result)
            print(
                f"  {label:6s}: single client median {latency['median_ms']:.2f} ms"
                f"  p99 {latency['p99_ms']:.2f} ms;"
                + describe(f"c={top}", result, ceiling).lstrip(),
                flush=True,
            )
    (empty_lat, empty_wrk), (seeded_lat, seeded_wrk) = figures["empty"], figures["seeded"]
    print(
        f"  seeded/empty: median latency {seeded_lat['median_ms'] / empty_lat['median_ms']:.2f}x,"
        f" c={top} p50 {seeded_wrk['p50_us'] / empty_wrk['p50_us']:.2f}x,"
        f" tokens/s {seeded_wrk['tokens_per_s'] / empty_wrk['tokens_per_s']:.2f}x"
    )


# The application gunicorn's asgi worker serves, by the bridge in front of Django.
BRIDGES = {"ours": "portal.asgi:application", "a2wsgi": "bench.a2wsgi_app:application"}


def main() -> int:
    parser = argparse.ArgumentParser(description="token endpoint benchmark")
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", 10)))
    parser.add_argument("--concurrency", default=os.environ.get("BENCH_CONCURRENCY", "1,8,32"))
    parser.add_argument("--db", default=os.environ.get("BENCH_DBS", "sqlite,postgres"))
    parser.add_argument(
        "--latency-n", type=int, default=int(os.environ.get("BENCH_LATENCY_N", 2000))
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        default=os.environ.get("BENCH_SCALE") == "1",
        help="also measure PostgreSQL with 100,000 clients (seeds once)",
    )
    parser.add_argument("--scale-only", action="store_true")
    parser.add_argument(
        "--bridge",
        choices=sorted(BRIDGES),
        default=os.environ.get("BENCH_BRIDGE", "ours"),
        help="the WSGI-to-ASGI bridge under gunicorn's asgi worker (a2wsgi must be installed)",
    )
    parser.add_argument(
        "--http-parser",
        choices=("auto", "python", "fast"),
        default=os.environ.get("GUNICORN_HTTP_PARSER", "auto"),
        help="gunicorn's HTTP parser: its own (python) or gunicorn-h1c (fast)",
    )
    args = parser.parse_args()
    # The servers read both from the environment (gunicorn.conf.py); GUNICORN_APP stays the
    # operator's (GUNICORN_WORKER_CLASS=gthread serves portal.wsgi) unless a2wsgi is asked for.
    if args.bridge != "ours":
        os.environ["GUNICORN_APP"] = BRIDGES[args.bridge]
    os.environ["GUNICORN_HTTP_PARSER"] = args.http_parser
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install -y wrk (make bench does it)", file=sys.stderr)
        return 2

    cores = os.cpu_count() or 1
    rsa = openssl_sign_per_second("rsa2048")
    ceiling = rsa * cores
    ec = openssl_sign_per_second("ecdsap256")
    print(
        f"ceiling: openssl speed rsa2048 {rsa:.1f} sign/s x {cores} cores = {ceiling:.0f} sign/s"
        f"  (ecdsap256: {ec:.1f} sign/s x {cores} = {ec * cores:.0f})"
    )
    print(f"40% target: {0.4 * ceiling:.0f} tokens/s")

    results = []
    if not args.scale_only:
        for label in args.db.split(","):
            results.append(bench_database(label, args, ceiling))
    if args.scale or args.scale_only:
        bench_scale(args, ceiling)

    verify = BENCH / "verify_bench.py"
    if verify.exists():
        print("\n== JWT verification (bench/verify_bench.py) ==", flush=True)
        subprocess.run([PYTHON, str(verify)], cwd=ROOT, check=False)

    print("\n== summary ==")
    failed = False
    for summary in results:
        for key, value in summary.items():
            if key.startswith("rs256_c") or key in ("es256", "view", "federated", "dpop"):
                failed = failed or value["errors"] > 0
            if key == "quota":
                failed = failed or any(v["errors"] > 0 for v in value.values())
        top = summary[f"rs256_c{max(args.concurrency)}"]
        print(
            f"{summary['db']:8s} c={max(args.concurrency)}: {top['tokens_per_s']:.0f} tokens/s"
            f" = {100 * top['tokens_per_s'] / ceiling:.1f}% of {ceiling:.0f};"
            f" p99 {top['p99_us'] / 1000:.1f} ms; errors {top['errors']};"
            f" ES256 {summary['es256']['tokens_per_s']:.0f} tokens/s;"
            f" federated {summary['federated']['tokens_per_s']:.0f} tokens/s;"
            f" DPoP {summary['dpop']['tokens_per_s']:.0f} tokens/s;"
            f" Redis without/with an enforced quota"
            f" {summary['quota']['without']['tokens_per_s']:.0f}/"
            f"{summary['quota']['with']['tokens_per_s']:.0f} tokens/s;"
            f" cold {summary['cold_ms']:.0f} ms;"
            f" single client median {summary['latency']['median_ms']:.2f} ms"
            f" p99 {summary['latency']['p99_ms']:.2f} ms"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
