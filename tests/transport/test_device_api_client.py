"""The device API clients (blocking and asyncio) against a real HTTP server on 127.0.0.1:
every failure is one of Patchline's errors, worded once, the same by both."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import httpx
import msgspec
import pytest

from patchline.errors import (
    DeviceSetupError,
    DirectorRefusedError,
    ServerBusyError,
    SourceUnreachableError,
)
from patchline.transport.device_api_async import AsyncDeviceApiClient
from patchline.transport.device_api_client import DeviceApiClient
from patchline.transport.http import http_pool
from patchline.wire.device_api import (
    CheckIn,
    EnrollRequest,
    Network,
    ReportBatch,
    Slot,
    SlotState,
)

#: What the server answers next: status, body and extra headers.
ANSWER: dict[str, Any] = {"status": 200, "body": b"{}", "headers": {}}
SEEN: list[tuple[str, str]] = []


class _Scripted(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        SEEN.append((self.path, self.headers.get("Authorization", "")))
        body: bytes = ANSWER["body"]
        self.send_response(ANSWER["status"])
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in ANSWER.get("headers", {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _AsyncClient:
    """The asyncio client, each call run to completion on its own event loop."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url

    def __getattr__(self, name: str) -> Any:
        async def call(*args: Any) -> Any:
            async with httpx.AsyncClient(timeout=2) as http:
                return await getattr(AsyncDeviceApiClient(http, self.server_url), name)(*args)

        return lambda *args: asyncio.run(call(*args))


def make_client(kind: str, url: str) -> Any:
    if kind == "sync":
        return DeviceApiClient(http_pool(1, 2), url)
    return _AsyncClient(url)


@pytest.fixture(params=["sync", "async"])
def client(request: pytest.FixtureRequest) -> Iterator[DeviceApiClient]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    Thread(target=server.serve_forever, daemon=True).start()
    SEEN.clear()
    try:
        yield make_client(request.param, f"http://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.shutdown()
        server.server_close()


def answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    ANSWER.update(status=status, body=body, headers=headers or {})


CHECK_IN = CheckIn(
    build="1.0",
    build_sha256="0" * 64,
    security_patch_level="2026-01-01",
    slot=SlotState(active=Slot.A),
    free_bytes=1,
    battery_percent=90,
    network=Network.WIFI,
    region="DE",
)
ENROLL = EnrollRequest(
    model="alpha",
    serial="SN-1",
    hardware_id="hw-1",
    region="DE",
    deployed_on="2025-01-01",
    build="1.0",
    security_patch_level="2026-01-01",
)


def test_each_call_posts_to_its_endpoint_with_the_bearer(client: DeviceApiClient) -> None:
    answer(200, b'{"accepted": []}')
    assert client.send_reports("dev.secret", ReportBatch(reports=[])).accepted == []
    assert SEEN == [("/v1/reports", "Bearer dev.secret")]


def test_a_revoked_credential_is_named_as_such(client: DeviceApiClient) -> None:
    answer(401, b'{"error": "unknown credential"}')
    with pytest.raises(SourceUnreachableError, match="does not accept this device's credential"):
        client.check_in("dev.secret", CHECK_IN)


def test_a_refused_enrollment_keeps_the_servers_words_and_hint(client: DeviceApiClient) -> None:
    answer(401, b'{"error": "wrong enrollment token", "hint": "ask the fleet operator"}')
    with pytest.raises(DeviceSetupError, match="wrong enrollment token") as caught:
        client.enroll("bad-token", ENROLL)
    assert caught.value.hint == "ask the fleet operator"


def test_another_refusal_names_the_status(client: DeviceApiClient) -> None:
    answer(409, b"")
    with pytest.raises(SourceUnreachableError, match=r"refused the reports \(HTTP 409\)"):
        client.send_reports("dev.secret", ReportBatch(reports=[]))


def test_a_503_is_a_busy_server_with_the_wait_it_asked_for(client: DeviceApiClient) -> None:
    answer(503, b'{"error": "the device registry is unavailable"}', {"Retry-After": "10"})
    with pytest.raises(ServerBusyError, match=r"cannot take the check-in now \(HTTP 503\)") as e:
        client.check_in("dev.secret", CHECK_IN)
    assert e.value.retry_after == 10
    answer(500, b"")
    with pytest.raises(ServerBusyError, match=r"HTTP 500") as e:
        client.send_reports("dev.secret", ReportBatch(reports=[]))
    assert e.value.retry_after is None


def test_a_malformed_check_in_answer_is_a_director_refusal(client: DeviceApiClient) -> None:
    answer(200, b'{"unexpected": true}')
    with pytest.raises(DirectorRefusedError, match="malformed"):
        client.check_in("dev.secret", CHECK_IN)


def test_a_malformed_enrollment_answer_is_a_setup_error(client: DeviceApiClient) -> None:
    answer(201, b"not json")
    with pytest.raises(DeviceSetupError, match="malformed"):
        client.enroll("token", ENROLL)


def test_a_check_in_answer_is_decoded(client: DeviceApiClient) -> None:
    answer(200, msgspec.json.encode({"director": {}, "mirrors": ["m"], "poll_after_seconds": 9}))
    got = client.check_in("dev.secret", CHECK_IN)
    assert (got.mirrors, got.poll_after_seconds) == (["m"], 9)
    assert SEEN == [("/v1/check-in", "Bearer dev.secret")]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_server_that_cannot_be_reached_is_unreachable(kind: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client(kind, f"http://127.0.0.1:{port}")
    with pytest.raises(SourceUnreachableError, match="cannot send reports"):
        client.send_reports("dev.secret", ReportBatch(reports=[]))
