"""The device API (``/v1``, ``patchline.wire.device_api``) as a client speaks it, without
the I/O: which path each call posts to, its bearer header and JSON body, and how every
failure maps to Patchline's errors. The sync client (``device_api_client``, urllib3) and
the async one (``device_api_async``, httpx) differ only in how they send the bytes.

Failures: the server unreachable (SourceUnreachableError, with a short network reason),
a credential the server no longer accepts (401), another refusal in the server's own
words and hint, and an answer that is not the expected shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import msgspec

from patchline.errors import (
    DeviceSetupError,
    DirectorRefusedError,
    PatchlineError,
    ServerBusyError,
    SourceUnreachableError,
)
from patchline.transport.backoff import retry_after_seconds

Answer = TypeVar("Answer")


@dataclass(frozen=True)
class Endpoint:
    """One POST of the device API and how its failures are worded."""

    path: str
    what: str  # what was sent, as the object of "the server refused ..."
    unreachable: str  # the message when the server cannot be reached ({server}, {reason})
    success: int = 200
    #: Whether the bearer is the device's credential (a 401 then means it was revoked).
    by_credential: bool = True
    refused: type[PatchlineError] = SourceUnreachableError
    malformed: type[PatchlineError] = SourceUnreachableError
    hint: str | None = None


ENROLL = Endpoint(
    "/v1/enroll",
    "enrollment",
    "Server {server}: {reason}",
    success=201,
    by_credential=False,
    refused=DeviceSetupError,
    malformed=DeviceSetupError,
    hint="check the enrollment token and the serial number",
)
CHECK_IN = Endpoint("/v1/check-in", "the check-in", "{reason}", malformed=DirectorRefusedError)
REPORTS = Endpoint("/v1/reports", "the reports", "cannot send reports: {reason}")
RECEIPTS = Endpoint("/v1/receipts", "the receipts", "cannot send receipts: {reason}")


@dataclass(frozen=True)
class Post:
    """The bytes of one call: where to, with which headers and body."""

    url: str
    headers: dict[str, str]
    body: bytes


def post(server_url: str, endpoint: Endpoint, bearer: str, body: msgspec.Struct) -> Post:
    """The request that sends ``body`` to ``endpoint`` of the server at ``server_url``
    (no trailing slash) with ``bearer`` as its credential."""
    return Post(
        f"{server_url}{endpoint.path}",
        {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"},
        msgspec.json.encode(body),
    )


def unreachable(endpoint: Endpoint, server_url: str, reason: str) -> SourceUnreachableError:
    """The error for a call that never got an answer, for the network ``reason``."""
    return SourceUnreachableError(endpoint.unreachable.format(server=server_url, reason=reason))


def answer_of(
    endpoint: Endpoint,
    status: int,
    data: bytes,
    answer: type[Answer],
    retry_after: str | None = None,
) -> Answer:
    """The decoded answer to a call that got HTTP ``status`` and ``data`` (and the
    ``Retry-After`` header ``retry_after``); raises the endpoint's refusal (in the
    server's words), ServerBusyError for a server error on a device's call (503, 429
    or another 5xx, with the wait it asked for), or the malformed-answer error."""
    if status != endpoint.success:
        raise _refusal(endpoint, status, data, retry_after)
    try:
        return msgspec.json.decode(data, type=answer)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise endpoint.malformed(
            f"the server's answer to {endpoint.what} is malformed: {exc}"
        ) from None


def _refusal(
    endpoint: Endpoint, status: int, data: bytes, retry_after: str | None
) -> PatchlineError:
    """The server's refusal, in its own words (error and hint) when it gave them."""
    try:
        said = msgspec.json.decode(data)
        error, hint = str(said["error"]), said.get("hint")
    except (msgspec.DecodeError, KeyError, TypeError, AttributeError):
        error, hint = "", None
    hint = str(hint) if hint else endpoint.hint
    if status == 401 and endpoint.by_credential:
        return SourceUnreachableError(
            "the server does not accept this device's credential (401)", hint=hint
        )
    said_text = f": {error}" if error else ""
    if endpoint.by_credential and (status == 429 or status >= 500):
        wait = retry_after_seconds(retry_after, datetime.now(UTC))
        asked = f"; it asked to wait {wait:g} s" if wait is not None else ""
        return ServerBusyError(
            f"the server cannot take {endpoint.what} now (HTTP {status}){said_text}{asked}",
            hint=hint,
            retry_after=wait,
        )
    return endpoint.refused(
        f"the server refused {endpoint.what} (HTTP {status}){said_text}", hint=hint
    )
