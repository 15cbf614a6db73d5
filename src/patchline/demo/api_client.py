"""Calling the management API from the demos, as an admin."""

from __future__ import annotations

import json
from typing import Any

import urllib3


def call_api(
    server_url: str, token: str, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    """``method path`` on the management API with ``token``; the decoded JSON answer.

    Raises RuntimeError naming the call on an error status: a demo step that fails stops
    the demo.
    """
    response = urllib3.request(
        method,
        f"{server_url}{path}",
        body=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=60,
    )
    if response.status >= 400:
        raise RuntimeError(f"{method} {path}: HTTP {response.status} {response.data[:300]!r}")
    return json.loads(response.data)
