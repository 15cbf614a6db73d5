"""A webhook receiver on 127.0.0.1 that checks every signature (with the
``standardwebhooks`` library) and can be down, failing, slow or healthy."""

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
    """What reached the receiver, by webhook-id."""

    bodies: dict[str, str] = field(default_factory=dict)
    deliveries: int = 0
    answered_503: int = 0
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(b) for b in self.bodies.values()]


class Receiver:
    """``start()`` listens on ``port`` (until then connections are refused); ``status``
    is what it answers; ``hold`` is how long it takes to answer."""

    def __init__(self, port: int, secret: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/hooks"
        self.webhook = Webhook(secret)
        self.received = Received()
        self.status = 200
        self.hold = 0.0
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                got = receiver.received
                try:
                    receiver.webhook.verify(body, dict(self.headers.items()))
                except Exception:
                    with got.lock:
                        got.bad_signatures += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                status = receiver.status
                with got.lock:
                    got.deliveries += 1
                    if status == 503:
                        got.answered_503 += 1
                    else:
                        got.bodies.setdefault(self.headers["webhook-id"], body)
                time.sleep(receiver.hold)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.received.lock:
                if len(self.received.bodies) >= count:
                    return
            time.sleep(0.1)
        raise AssertionError(
            f"{len(self.received.bodies)} of {count} events arrived; "
            f"{self.received.deliveries} deliveries, {self.received.answered_503} answered 503, "
            f"{self.received.bad_signatures} bad signatures"
        )
