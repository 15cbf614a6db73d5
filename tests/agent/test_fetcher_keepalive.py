"""A connection reused after an error answer carries nothing of that answer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tuf.api.exceptions import DownloadHTTPError

from patchline.transport.fetcher import SourceFetcher
from patchline.transport.http import http_pool

BODY = b'{"signed": "metadata"}'


class KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; 404 answers carry a body, as most servers' do."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        status, body = (404, b'{"detail":"Not Found"}') if "missing" in self.path else (200, BODY)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), KeepAliveHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_404_body_does_not_leak_into_the_next_response(server: str) -> None:
    fetcher = SourceFetcher(http_pool(2, 5))
    for _ in range(3):
        with pytest.raises(DownloadHTTPError):
            b"".join(fetcher.fetch(f"{server}/metadata/2.root.json.missing"))
        assert b"".join(fetcher.fetch(f"{server}/metadata/timestamp.json")) == BODY
