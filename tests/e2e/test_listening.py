"""How gunicorn.conf.py listens: under the asgi worker, a socket per worker (SO_REUSEPORT), so
that the kernel spreads connections across workers instead of one worker accepting a burst."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.e2e.server import ServerProcess, server_database

pytestmark = pytest.mark.e2e

LISTEN = "0A"  # TCP state in /proc/net/tcp


def listening_inodes(port: int) -> set[str]:
    """Inodes of the sockets listening on 127.0.0.1:port (from /proc/net/tcp)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == LISTEN and int(local.split(":")[1], 16) == port:
            inodes.add(inode)
    return inodes


def sockets_of(pid: int) -> set[str]:
    """Inodes of the sockets process ``pid`` holds open."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            found.add(target[len("socket:[") : -1])
    return found


def workers_of(server: ServerProcess) -> list[int]:
    pid = server.process.pid
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.parametrize(("reuse_port", "expected_sockets"), [("", 2), ("false", 1)])
def test_each_asgi_worker_listens_on_a_socket_of_its_own(
    tmp_path: Path, reuse_port: str, expected_sockets: int
) -> None:
    extra_env = {"GUNICORN_REUSE_PORT": reuse_port} if reuse_port else {}
    with server_database(tmp_path) as database:
        server = ServerProcess(database, extra_env=extra_env).start(tmp_path, workers=2)
        try:
            for _ in range(20):  # both workers answer, whichever socket a connection reaches
                assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200
            workers = workers_of(server)
            assert len(workers) == 2
            listening = listening_inodes(server.port)
            held = [sockets_of(pid) & listening for pid in workers]
            assert all(len(sockets) == 1 for sockets in held), held
            assert len(set().union(*held)) == expected_sockets
        finally:
            server.stop()
