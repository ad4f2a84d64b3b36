"""Webhook workers as real processes on a real server's database: a worker SIGKILLed in the
middle of a delivery, and two workers at once. The receiver verifies with ``standardwebhooks``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
import requests

from tests.e2e.server import ROOT, running_server
from tests.webhook_receiver import Receiver

LEASE = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("webhooks")
    extra = {"OUTBOUND_ALLOW_INSECURE": "true", "OUTBOX_LEASE_SECONDS": str(LEASE)}
    with running_server(tmp, extra_env=extra, workers=1) as process:
        yield process


@pytest.fixture(scope="module")
def api(server):
    management = server.management("webhook tests")

    def call(method: str, path: str, body: dict | None = None) -> dict:
        response = requests.request(
            method,
            f"{server.url}/api/v1{path}",
            json=body,
            headers=management.headers,
            timeout=10,
        )
        assert response.status_code < 300, response.text
        return response.json()

    return call


def start_worker(server, log_name: str, tmp_path) -> subprocess.Popen:
    env = {k: v for k, v in server.env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    log = (tmp_path / log_name).open("w")
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_webhook_worker", "--interval", "0.2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(predicate, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def setup_endpoint(api, receiver: Receiver, event_types: list[str]) -> tuple[str, str]:
    organization = api("post", "/organizations", {"display_name": f"Hooks {time.time()}"})
    org_id = organization["organization"]["id"]
    made = api(
        "post",
        f"/organizations/{org_id}/webhook-endpoints",
        {"url": receiver.url, "event_types": event_types},
    )
    receiver.secret = made["signing_secret"]
    return org_id, made["webhook_endpoint"]["id"]


def test_a_worker_killed_mid_delivery_leaves_the_event_to_the_next_worker(server, api, tmp_path):
    receiver = Receiver(block=threading.Event()).start()
    first = second = None
    try:
        org_id, endpoint_id = setup_endpoint(api, receiver, ["client.created"])
        api("post", f"/organizations/{org_id}/clients", {"name": "Killed mid-way"})
        first = start_worker(server, "first.log", tmp_path)
        assert receiver.entered.wait(30), (tmp_path / "first.log").read_text()
        os.kill(first.pid, signal.SIGKILL)  # in the middle of the POST
        first.wait(10)
        receiver.block.set()  # its answer goes nowhere
        second = start_worker(server, "second.log", tmp_path)  # claims it once the lease ends
        wait_until(lambda: len(receiver.ok()) >= 2, timeout=LEASE + 30)
        ids = {r.id for r in receiver.received}
        assert len(ids) == 1  # the same webhook-id both times: the receiver de-duplicates
        assert all(r.verified for r in receiver.received)
        assert receiver.ok()[0]["data"]["name"] == "Killed mid-way"
        deliveries = api(
            "get", f"/organizations/{org_id}/webhook-endpoints/{endpoint_id}/deliveries"
        )["deliveries"]
        # The killed worker recorded nothing; the next one recorded attempt 2, delivered.
        assert [(d["attempt"], d["status"]) for d in deliveries] == [(2, "succeeded")]
    finally:
        receiver.block.set()
        for process in (first, second):
            if process is not None:
                stop(process)
        receiver.stop()


def test_two_workers_never_make_one_attempt_twice_at_once(server, api, tmp_path):
    receiver = Receiver(delay=0.2).start()  # slow answers, so that the two workers overlap
    workers = []
    try:
        org_id, _endpoint_id = setup_endpoint(api, receiver, ["client.created"])
        count = 12
        for n in range(count):
            api("post", f"/organizations/{org_id}/clients", {"name": f"Pair {n}"})
        workers = [start_worker(server, f"pair-{n}.log", tmp_path) for n in range(2)]
        wait_until(lambda: len(receiver.ok()) >= count, timeout=60)
        time.sleep(1)  # anything twice would arrive now
        for process in workers:
            stop(process)
        per_id = Counter(r.id for r in receiver.received)
        assert len(per_id) == count and set(per_id.values()) == {1}
        assert receiver.concurrent_max == 1
        assert sorted(p["data"]["name"] for p in receiver.ok()) == sorted(
            f"Pair {n}" for n in range(count)
        )
        logs = [(tmp_path / f"pair-{n}.log").read_text() for n in range(2)]
        assert not any("Traceback" in log for log in logs)
        done = [int(re.search(r"webhooks: (\d+) done", log).group(1)) for log in logs]
        assert sum(done) == count and all(done), done  # both worked, neither twice
    finally:
        for process in workers:
            stop(process)
        receiver.stop()


def test_the_scripted_scenario_over_http_arrives_verified_exactly_once(server, api, tmp_path):
    """Create a client, add a secret, revoke it, delete the client, all through the management
    API of a real server; one worker process delivers; the receiver verifies each delivery with
    ``standardwebhooks`` and no body holds a plain secret."""
    receiver = Receiver().start()
    try:
        org_id, endpoint_id = setup_endpoint(
            api, receiver, ["client.created", "secret.created", "secret.revoked", "client.deleted"]
        )
        clients = f"/organizations/{org_id}/clients"
        made = api("post", clients, {"name": "Scenario"})
        client_id = made["client"]["client_id"]
        added = api("post", f"{clients}/{client_id}/secrets")
        secret_id = added["secret"]["id"]
        api("delete", f"{clients}/{client_id}/secrets/{secret_id}")
        api("delete", f"{clients}/{client_id}")
        server.manage("run_webhook_worker", "--once")
        assert all(r.verified for r in receiver.received)
        assert Counter(receiver.types()) == Counter(
            {"client.created": 1, "secret.created": 2, "secret.revoked": 1, "client.deleted": 1}
        )
        per_id = Counter(r.id for r in receiver.received)
        assert set(per_id.values()) == {1}  # exactly once per successful delivery
        by_type = {p["type"]: p for p in receiver.ok()}
        assert by_type["client.created"]["data"]["client_id"] == client_id
        assert by_type["client.created"]["data"]["organization_id"] == org_id
        assert by_type["secret.revoked"]["data"]["secret_id"] == secret_id
        assert by_type["secret.revoked"]["data"]["secret_suffix"] == added["plain_secret"][-4:]
        assert by_type["client.deleted"]["data"]["name"] == "Scenario"
        for text in (r.body.decode() for r in receiver.received):
            for plain in (made["plain_secret"], added["plain_secret"], receiver.secret):
                assert plain not in text
        deliveries = api(
            "get", f"/organizations/{org_id}/webhook-endpoints/{endpoint_id}/deliveries"
        )
        assert {d["status"] for d in deliveries["deliveries"]} == {"succeeded"}
        assert deliveries["total_size"] == 5
    finally:
        receiver.stop()
