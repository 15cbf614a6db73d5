"""The floor as the issue defines it: plain ASGI that reads the check-in body, decodes it
with msgspec (as ``/v1`` does) and returns fixed bytes of the size of a real answer; no
framework, no routing object. Run: granian --interface asgi bench.checkin.bare_asgi:app"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec

from patchline.wire.device_api import CheckIn

_DECODER = msgspec.json.Decoder(CheckIn)
_ANSWER = Path(os.environ.get("PATCHLINE_BENCH_ANSWER", "/dev/null")).read_bytes()
_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(_ANSWER)).encode()),
]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read and decode the body, answer the same bytes every time."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    if scope["path"] == "/v1/check-in":
        _DECODER.decode(body)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _ANSWER})
