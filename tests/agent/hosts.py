"""Real HTTP hosts on 127.0.0.1 for agent tests: an honest static host that honours
Range requests and counts what it serves, and hostile ones (the attacker the agent
defends against) that tamper, send endless data, or trickle, and misleading ones that
redirect every request or answer an HTML page (a captive portal), and a device API
that is busy (503 with Retry-After, or a bare 500) for every call."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_RANGE = re.compile(r"^bytes=(\d+)-$")


@dataclass
class Served:
    """One request as the host saw it."""

    path: str
    range: str | None
    status: int
    body_bytes: int = 0


@dataclass
class Behaviour:
    """How the host treats target files (metadata is always served honestly)."""

    tamper: bool = False  # flip a byte in the middle of every target
    endless: int = 0  # bytes of junk appended to every target (Content-Length included)
    bytes_per_second: int = 0  # throttle target bodies (0: as fast as possible)
    trickle: bool = False  # one byte every 50 ms
    ignore_range: bool = False
    cut_suffix: str = ""  # targets ending so: the body stops half way and the connection closes
    redirect_to: str = ""  # every request answered 302 to this base URL + the same path
    html: bool = False  # every request answered 200 with an HTML page (a captive portal)
    endless_metadata: bool = False  # metadata files followed by junk that never ends
    trickle_metadata: bool = False  # metadata sent one byte every 50 ms


@dataclass
class RangeHost:
    """Serves ``directory`` over HTTP on 127.0.0.1 until ``stop()``."""

    directory: Path
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[Served] = field(default_factory=list)

    def __post_init__(self) -> None:
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                host._get(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def target_requests(self) -> list[Served]:
        return [r for r in self.requests if r.path.startswith("/targets/")]

    def _mislead(self, handler: BaseHTTPRequestHandler, path: str, record: Served) -> None:
        if self.behaviour.redirect_to:
            record.status = 302
            handler.send_response(302)
            handler.send_header("Location", f"{self.behaviour.redirect_to}{path}")
            body = b""
        else:
            record.status = 200
            handler.send_response(200)
            handler.send_header("Content-Type", "text/html; charset=utf-8")
            body = b"<!doctype html><html><body>Sign in to the hotel Wi-Fi</body></html>"
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        record.body_bytes = len(body)

    def _endless(self, handler: BaseHTTPRequestHandler, data: bytes, record: Served) -> None:
        """The file, then spaces until the client hangs up (no Content-Length)."""
        record.status = 200
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        junk = b" " * 65536
        try:
            handler.wfile.write(data)
            record.body_bytes = len(data)
            while record.body_bytes < 1 << 30:
                handler.wfile.write(junk)
                record.body_bytes += len(junk)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        file = (self.directory / path.lstrip("/")).resolve()
        record = Served(path, handler.headers.get("Range"), 404)
        self.requests.append(record)
        if self.behaviour.redirect_to or self.behaviour.html:
            self._mislead(handler, path, record)
            return
        if not file.is_file() or self.directory.resolve() not in file.parents:
            handler.send_response(404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        data = file.read_bytes()
        is_target = path.startswith("/targets/")
        if not is_target and self.behaviour.endless_metadata:
            self._endless(handler, data, record)
            return
        if is_target and self.behaviour.tamper:
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
        if is_target and self.behaviour.endless:
            data += b"\0" * self.behaviour.endless
        start = 0
        match = _RANGE.match(record.range or "")
        if match and not self.behaviour.ignore_range and int(match.group(1)) < len(data):
            start = int(match.group(1))
            record.status = 206
            handler.send_response(206)
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            record.status = 200
            handler.send_response(200)
        body = data[start:]
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        write: Callable[[bytes], None] = handler.wfile.write
        try:
            if is_target and self.behaviour.cut_suffix and path.endswith(self.behaviour.cut_suffix):
                write(body[: len(body) // 2])
                handler.wfile.flush()
                record.body_bytes = len(body) // 2
                handler.close_connection = True
                return
            if (is_target and self.behaviour.trickle) or (
                not is_target and self.behaviour.trickle_metadata
            ):
                for i in range(len(body)):
                    write(body[i : i + 1])
                    handler.wfile.flush()
                    record.body_bytes += 1
                    time.sleep(0.05)
            elif is_target and self.behaviour.bytes_per_second:
                step = max(self.behaviour.bytes_per_second // 20, 1)
                for i in range(0, len(body), step):
                    write(body[i : i + step])
                    handler.wfile.flush()
                    record.body_bytes += len(body[i : i + step])
                    time.sleep(0.05)
            else:
                write(body)
                record.body_bytes = len(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


class BusyServer:
    """A device API that answers every POST with a 503 (``Retry-After`` when set) or
    a bare 500, and counts the calls by path."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.retry_after: str | None = "10"
        busy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave at once

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                busy.calls.append(self.path)
                body = b'{"error": "the device registry is unavailable; try again shortly"}'
                self.send_response(503 if busy.retry_after else 500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if busy.retry_after:
                    self.send_header("Retry-After", busy.retry_after)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
