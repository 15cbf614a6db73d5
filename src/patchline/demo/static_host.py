"""A plain static HTTP host for a directory: what nginx, a CDN or a mirror would be."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class _QuietHandler(SimpleHTTPRequestHandler):
    # HTTP/1.1 keeps the connection open between requests, as nginx or a CDN would: a
    # TUF refresh makes several requests in a row.
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep request logs out of the demo's narration."""


class StaticHost:
    """Serves ``directory`` on ``host:port`` from a background thread until ``stop()``."""

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self._server = ThreadingHTTPServer((host, port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._stopped = False

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8000``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> StaticHost:
        """Start serving in the background; return self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (again is harmless)."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
