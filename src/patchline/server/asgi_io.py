"""Minimal ASGI request and response helpers for the device API's hot path.

The device API runs as plain ASGI (no framework routing, no pydantic) so a check-in
costs little more than decoding its body and writing a cached, signed answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]


class BodyTooLarge(Exception):
    """The request body is larger than allowed."""


async def read_body(receive: Receive, limit: int) -> bytes:
    """Read the whole request body, refusing more than ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BodyTooLarge("client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def header(scope: Scope, name: bytes) -> str | None:
    """The value of one request header (latin-1), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def send_bytes(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Send a complete JSON response."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_JSON, (b"content-length", str(len(body)).encode()), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


#: How long a client is asked to wait after a 503 (the database or the writer is away).
RETRY_AFTER_SECONDS = 10


async def send_error(send: Send, status: int, message: str, hint: str | None = None) -> None:
    """Send ``{"error": message, "hint": hint}`` with ``status``; a 401 names the Bearer
    scheme, a 503 says when to try again (``Retry-After``)."""
    payload: dict[str, str] = {"error": message}
    if hint:
        payload["hint"] = hint
    extra = None
    if status == 401:
        extra = [(b"www-authenticate", b"Bearer")]
    elif status == 503:
        extra = [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())]
    await send_bytes(send, status, msgspec.json.encode(payload), extra)
