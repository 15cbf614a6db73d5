"""A hostile device-API server on 127.0.0.1: it answers every check-in with one fixed
body (a director answer captured elsewhere, or forged) and refuses everything else."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HostileDirector:
    """Answers ``POST /v1/check-in`` with ``answer`` until ``stop()``; counts check-ins."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.check_ins = 0
        director = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                self.rfile.read(length)
                if self.path == "/v1/check-in":
                    director.check_ins += 1
                    status, body = 200, director.answer
                else:
                    status, body = 503, b'{"error": "not now"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
