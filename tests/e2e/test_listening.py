"""How gunicorn.conf.py listens: under the asgi worker, a socket per worker (SO_REUSEPORT), so
that the kernel spreads connections across workers instead of one worker accepting a burst."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from tests.e2e.server import ServerProcess, running_server, server_database

pytestmark = pytest.mark.e2e

LISTEN = "0A"  # TCP state in /proc/net/tcp
UNIX_LISTENING = 0x10000  # __SO_ACCEPTCON, in the Flags of /proc/net/unix


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


def workers_of(pid: int) -> list[int]:
    """The worker processes of the gunicorn master ``pid``."""
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.parametrize(("reuse_port", "expected_sockets"), [("", 2), ("false", 1)])
def test_each_asgi_worker_listens_on_a_socket_of_its_own(
    tmp_path: Path, reuse_port: str, expected_sockets: int
) -> None:
    extra_env = {"GUNICORN_REUSE_PORT": reuse_port} if reuse_port else {}
    with running_server(tmp_path, extra_env=extra_env, workers=2) as server:
        for _ in range(20):  # both workers answer, whichever socket a connection reaches
            assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200
        workers = workers_of(server.process.pid)
        assert len(workers) == 2
        listening = listening_inodes(server.port)
        held = [sockets_of(pid) & listening for pid in workers]
        assert all(len(sockets) == 1 for sockets in held), held
        assert len(set().union(*held)) == expected_sockets


def unix_listeners(path: Path) -> set[str]:
    """Inodes of the Unix sockets listening on ``path`` (from /proc/net/unix); a connection
    accepted there (the readiness probe's, until its worker closes it) shows the path too."""
    inodes = set()
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[7] == str(path) and int(fields[3], 16) & UNIX_LISTENING:
            inodes.add(fields[6])
    return inodes


def test_a_unix_socket_is_shared_by_the_workers(tmp_path: Path) -> None:
    """With a socket per worker, each worker would replace the previous one's socket file and
    only the last would be reachable: on a Unix socket every worker accepts on the one socket."""
    path = tmp_path / "m2m.sock"
    with server_database(tmp_path) as database:
        server = ServerProcess(database).prepare()
        try:
            server.serve(tmp_path, workers=2, bind=f"unix:{path}")
            workers = workers_of(server.process.pid)
            assert len(workers) == 2
            log = server.wait_for_log("ASGI server listening", count=2, timeout=20)
            listening = unix_listeners(path)
            assert len(listening) == 1, listening
            assert all(sockets_of(pid) & listening == listening for pid in workers)
            assert "reuse_port off" in log
        finally:
            server.stop()


def test_reuse_port_is_kept_only_for_tcp_listeners_gunicorn_binds(monkeypatch) -> None:
    from gunicorn.config import Config

    from portal.serving.gunicorn_hooks import listen_per_worker_only_on_tcp

    def decided(binds: list[str], **env: str) -> bool:
        for name in ("LISTEN_FDS", "GUNICORN_FD"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        cfg = Config()
        cfg.set("bind", binds)
        cfg.set("reuse_port", True)
        listen_per_worker_only_on_tcp(SimpleNamespace(cfg=cfg, log=logging.getLogger("test")))
        return cfg.reuse_port

    assert decided(["127.0.0.1:8000", "[::1]:8000"]) is True
    assert decided(["unix:/run/m2m.sock"]) is False
    assert decided(["127.0.0.1:8000", "unix:/run/m2m.sock"]) is False
    assert decided(["fd://3"]) is False
    assert decided(["127.0.0.1:8000"], LISTEN_FDS="1") is False  # systemd's sockets
    assert decided(["127.0.0.1:8000"], GUNICORN_FD="5") is False  # a re-executing master's
