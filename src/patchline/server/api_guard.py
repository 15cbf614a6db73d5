"""The gate in front of the management API (``/api``): sign-in, rate limits, body size.

Every request is checked before a byte of its body is read: a request without a valid
token gets 401 (counted in ``/metrics`` and logged with the address, never the token),
an address with too many failed sign-ins or requests, or a token with too many
requests, gets 429 with ``Retry-After``, and a body larger than the endpoint's limit
gets 413 (from its ``Content-Length`` at once, or as soon as a streamed body passes it).
The signed-in caller is handed to the endpoints in the ASGI scope (``CALLER_KEY``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.exceptions import HTTPException

from patchline.server.asgi_io import (
    RETRY_AFTER_SECONDS,
    Message,
    Receive,
    Scope,
    Send,
    header,
    send_bytes,
)
from patchline.server.auth import Role, role_of
from patchline.server.outage_log import OutageLog
from patchline.server.rate_limit import RateLimiter
from patchline.store.db import DATABASE_UNAVAILABLE

if TYPE_CHECKING:
    from patchline.server.runtime import Runtime

log = logging.getLogger(__name__)

#: Where the guard leaves the caller's (token name, role) for the endpoints.
CALLER_KEY = "patchline.caller"
#: The one endpoint that takes an image upload, with its larger limit.
UPLOAD_ROUTE = ("POST", "/api/releases")


class NulInBodyError(HTTPException):
    """A request body holds the NUL character (U+0000), which no stored text may hold
    (PostgreSQL refuses it): refused before anything is stored."""

    def __init__(self) -> None:
        super().__init__(422, "text may not contain the NUL character (U+0000)")


class BodyTooLargeError(HTTPException):
    """A streamed request body passed the endpoint's limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class ApiGuard:
    """ASGI middleware for ``/api``: see the module docstring."""

    def __init__(self, app: Any, runtime: Runtime) -> None:
        self.app = app
        self.rt = runtime
        settings = runtime.settings
        self.failures = RateLimiter(settings.api_failed_signins_per_minute)
        self.outages = OutageLog(log)
        self.per_address = RateLimiter(settings.api_requests_per_minute_per_address)
        self.per_token = RateLimiter(settings.api_requests_per_minute_per_token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Admit, limit or refuse one ``/api`` request."""
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        wait = self.failures.retry_after(address)
        if wait:
            self.rt.metrics.rate_limited.labels("failed-signins").inc()
            await _refuse(send, 429, "too many failed sign-ins from this address", wait)
            return
        wait = self.per_address.take(address)
        if wait:
            self.rt.metrics.rate_limited.labels("address").inc()
            await _refuse(send, 429, "too many requests from this address", wait)
            return
        token = _bearer(header(scope, b"authorization"))
        try:
            caller = await self._caller(token) if token else None
        except DATABASE_UNAVAILABLE as exc:
            self.outages.failed(
                "database", "database unavailable to check a token for %s: %s", scope["path"], exc
            )
            await _refuse(
                send,
                503,
                "the database is unavailable; nothing was changed (try again shortly)",
                RETRY_AFTER_SECONDS,
            )
            return
        if caller is None:
            self._failed(address, token)
            await _refuse(
                send, 401, "unknown or revoked token" if token else "a bearer token is required"
            )
            return
        wait = self.per_token.take(caller[0])
        if wait:
            self.rt.metrics.rate_limited.labels("token").inc()
            await _refuse(send, 429, f"too many requests with token {caller[0]}", wait)
            return
        scope[CALLER_KEY] = caller
        limit = self._limit(scope)
        declared = header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, 413, f"request body larger than {limit} bytes")
            return
        received = 0
        started = False
        tail = b""
        text_body = (scope["method"], scope["path"].rstrip("/")) != UPLOAD_ROUTE

        async def capped_receive() -> Message:
            nonlocal received, tail
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    raise BodyTooLargeError(limit)
                if text_body:
                    seen = tail + chunk
                    if b"\x00" in seen or b"\\u0000" in seen:
                        raise NulInBodyError()
                    tail = seen[-5:]
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, capped_receive, watched_send)
        except (BodyTooLargeError, NulInBodyError) as exc:
            if started:
                raise
            await _refuse(send, exc.status_code, str(exc.detail))

    def _limit(self, scope: Scope) -> int:
        settings = self.rt.settings
        if (scope["method"], scope["path"].rstrip("/")) == UPLOAD_ROUTE:
            return settings.api_max_upload_bytes
        return settings.api_max_body_bytes

    async def _caller(self, token: str) -> tuple[str, Role] | None:
        def lookup() -> tuple[str, Role] | None:
            with self.rt.db.transaction() as session:
                return role_of(session, token)

        return await asyncio.get_running_loop().run_in_executor(None, lookup)

    def _failed(self, address: str, token: str | None) -> None:
        reason = "unknown-token" if token else "no-token"
        self.failures.take(address)
        self.rt.metrics.failed_signins.labels(reason).inc()
        shown = hashlib.sha256(token.encode()).hexdigest()[:8] if token else "-"
        log.warning(
            "failed sign-in to the management API from %s at %s: %s (token sha256 %s...)",
            address,
            self.rt.clock.now().isoformat(),
            reason,
            shown,
        )


def _bearer(raw: str | None) -> str | None:
    scheme, _, token = (raw or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def _refuse(send: Send, status: int, detail: str, retry_after: int | None = None) -> None:
    headers: list[tuple[bytes, bytes]] = [(b"connection", b"close")]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send_bytes(send, status, msgspec.json.encode({"detail": detail}), headers)
