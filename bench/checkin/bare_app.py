"""The floor: a Starlette endpoint that only decodes a check-in body with msgspec and
returns fixed bytes of the size of a real answer. Run: uvicorn bench.checkin.bare_app:app"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from patchline.wire.device_api import CheckIn

_DECODER = msgspec.json.Decoder(CheckIn)
_ANSWER = Path(os.environ.get("PATCHLINE_BENCH_ANSWER", "/dev/null")).read_bytes()


async def check_in(request: Request) -> Response:
    """Decode the body, return the same bytes every time."""
    _DECODER.decode(await request.body())
    return Response(_ANSWER, media_type="application/json")


app = Starlette(routes=[Route("/v1/check-in", check_in, methods=["POST"])])
