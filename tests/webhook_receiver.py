"""A real webhook receiver for the tests: an HTTP server on 127.0.0.1 that verifies every
delivery with the ``standardwebhooks`` reference library (not our code) and records it.

``statuses`` scripts its answers (a list consumed in order, then ``default_status``);
``block`` makes it hold each request until released (a worker killed mid-delivery), ``delay``
slows each answer;
``concurrent_max`` is the most requests it saw at the same moment per ``webhook-id``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass
class Received:
    id: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    payload: dict[str, Any] | None
    status: int


@dataclass
class Receiver:
    secret: str = ""
    statuses: list[int] = field(default_factory=list)
    default_status: int = 200
    block: threading.Event | None = None
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    in_flight: dict[str, int] = field(default_factory=dict)
    concurrent_max: int = 0
    entered: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def start(self, port: int = 0) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                message_id = headers.get("webhook-id", "")
                with receiver._lock:
                    count = receiver.in_flight.get(message_id, 0) + 1
                    receiver.in_flight[message_id] = count
                    receiver.concurrent_max = max(receiver.concurrent_max, count)
                receiver.entered.set()
                try:
                    if receiver.block is not None:
                        receiver.block.wait(30)
                    time.sleep(receiver.delay)
                    try:
                        payload = Webhook(receiver.secret).verify(body, headers)
                        verified = True
                    except Exception:
                        payload, verified = None, False
                    with receiver._lock:
                        scripted = receiver.statuses.pop(0) if receiver.statuses else None
                        status = scripted or (receiver.default_status if verified else 400)
                        receiver.received.append(
                            Received(message_id, headers, body, verified, payload, status)
                        )
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                finally:
                    with receiver._lock:
                        receiver.in_flight[message_id] -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def ok(self) -> list[dict[str, Any]]:
        """The verified payloads the receiver accepted (answered 2xx), in arrival order."""
        return [
            r.payload
            for r in self.received
            if r.verified and r.payload is not None and 200 <= r.status < 300
        ]

    def types(self) -> list[str]:
        return [p["type"] for p in self.ok()]

    def bodies(self) -> list[str]:
        return [r.body.decode() for r in self.received]

    @staticmethod
    def dumps(value: Any) -> str:
        return json.dumps(value)
