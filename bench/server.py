"""Bench helpers (not part of the product): databases, a gunicorn server, a client, measurements.

Used by bench/run.py and bench/latency.py. Everything listens on 127.0.0.1 on a free port.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(PYTHON).with_name("gunicorn"))
# Fixed, so that signing keys stored in the kept PostgreSQL bench database stay decryptable from
# one run to the next. Bench data only: never a production value.
BENCH_SECRET_KEY = os.environ.get(
    "BENCH_SECRET_KEY", "bench-only-secret-key-never-use-in-production-0123456789"
)
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/m2m_bench")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_pg_database(url: str) -> None:
    """CREATE DATABASE when it is missing (connecting to the server's ``postgres`` database)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


@functools.cache
def collected_static_root() -> str:
    """collectstatic into a temporary STATIC_ROOT, once: with DEBUG off the server refuses to
    start without the static files manifest."""
    root = tempfile.mkdtemp(prefix="m2m-bench-static-")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": BENCH_SECRET_KEY, "STATIC_ROOT": root}
    subprocess.run(
        [PYTHON, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return root


def base_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",  # plain HTTP on a local port
        "SECRET_KEY": BENCH_SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "OAUTH_ISSUER": "http://127.0.0.1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "STATIC_ROOT": collected_static_root(),
    }
    env.update(extra)
    return env


@dataclass
class Database:
    """One database under test, with the environment its server and scripts run in."""

    label: str
    url: str
    env: dict[str, str] = field(default_factory=dict)

    def manage(self, *args: str) -> str:
        return subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def make_clients(
        self, count: int = 1, algorithm: str | None = None, federated: bool = False
    ) -> list[dict[str, str]]:
        cmd = [PYTHON, "bench/make_client.py", "--count", str(count)]
        if algorithm:
            cmd += ["--algorithm", algorithm]
        if federated:
            cmd.append("--federated")
        out = subprocess.run(
            cmd, cwd=ROOT, env=self.env, check=True, capture_output=True, text=True
        ).stdout
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@contextlib.contextmanager
def database(label: str, secret_key: str) -> Iterator[Database]:
    """``sqlite`` (a temp file, removed afterwards) or ``postgres`` (PG_URL, created if missing)."""
    if label == "sqlite":
        with tempfile.TemporaryDirectory(prefix="m2m-bench-") as tmp:
            url = f"sqlite:///{tmp}/bench.sqlite3"
            db = Database(label, url, base_env(url, SECRET_KEY=secret_key))
            db.manage("migrate", "--noinput")
            yield db
        return
    url = PG_URL if label == "postgres" else label
    ensure_pg_database(url)
    db = Database(label, url, base_env(url, SECRET_KEY=secret_key))
    db.manage("migrate", "--noinput")
    yield db


def postgres_cpu_seconds() -> float:
    """User + system CPU time used so far by every PostgreSQL process on this machine."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        if stat.partition(" (")[2].rpartition(")")[0] == "postgres":
            total += _cpu_ticks(stat)
    return total / ticks


def _cpu_ticks(stat: str) -> int:
    """utime + stime from the text of /proc/PID/stat."""
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def machine_busy_seconds() -> float:
    """CPU time all cores spent not idle so far (from /proc/stat), in seconds."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    process: subprocess.Popen
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()]

    def worker_cpu_seconds(self) -> float:
        """User + system CPU time used so far by all workers (from /proc/PID/stat)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.worker_pids():
            total += _cpu_ticks(Path(f"/proc/{pid}/stat").read_text())
        return total / ticks

    def worker_rss_mib(self) -> list[float]:
        sizes = []
        for pid in self.worker_pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        return sizes


@contextlib.contextmanager
def gunicorn(db: Database, **env: str) -> Iterator[Server]:
    """The production server (gunicorn.conf.py) on a free port; stopped afterwards."""
    port = free_port()
    server_env = {**db.env, "GUNICORN_BIND": f"127.0.0.1:{port}", **env}
    log = open(Path(tempfile.gettempdir()) / f"m2m-bench-gunicorn-{port}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [GUNICORN, "-c", "gunicorn.conf.py"],
        cwd=ROOT,
        env=server_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Server(process, port)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {Path(log.name).read_text()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/.well-known/oauth-authorization-server")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not answer within 30 s")
            time.sleep(0.1)
        # One worker answered; wait until every worker serves (under asgi each worker listens on
        # a socket of its own, whose connections wait while that worker is still starting).
        workers = int(server_env.get("GUNICORN_WORKERS", "0") or 0)
        while workers and len(server.worker_pids()) < workers and time.monotonic() < deadline:
            time.sleep(0.1)
        asgi = server_env.get("GUNICORN_WORKER_CLASS", "asgi") == "asgi"
        marker = "ASGI server listening on" if asgi else "token endpoint:"
        while Path(log.name).read_text().count(marker) < len(server.worker_pids()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not serving: {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.05)
        time.sleep(0.2)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        Path(log.name).unlink(missing_ok=True)


def token_body(client: dict[str, str]) -> bytes:
    return urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        }
    ).encode()


class TokenClient:
    """A sequential HTTP/1.1 client that keeps its connection when the server allows it."""

    HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        self.conn.request("POST", "/oauth/token", body, self.HEADERS)
        response = self.conn.getresponse()
        data = response.read()
        if response.will_close:
            self.conn.close()
            self.conn = None
        return response.status, data

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(pct / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def sequential_latency(
    port: int, client: dict[str, str], n: int = 2000, warmup: int = 200
) -> dict[str, float]:
    """Median and p99 (ms) of ``n`` sequential token requests after ``warmup`` untimed ones."""
    body = token_body(client)
    http_client = TokenClient(port)
    failures = 0
    for _ in range(warmup):
        http_client.post(body)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        status, data = http_client.post(body)
        times.append(time.perf_counter() - start)
        if status != 200 or b'"access_token"' not in data:
            failures += 1
    http_client.close()
    times.sort()
    return {
        "n": n,
        "median_ms": percentile(times, 50) * 1000,
        "p99_ms": percentile(times, 99) * 1000,
        "failures": failures,
    }


def cold_latency_ms(port: int, client: dict[str, str]) -> tuple[int, float]:
    """Status and time of the first request of a never-seen secret (argon2 runs)."""
    http_client = TokenClient(port)
    start = time.perf_counter()
    status, _ = http_client.post(token_body(client))
    elapsed = (time.perf_counter() - start) * 1000
    http_client.close()
    return status, elapsed
