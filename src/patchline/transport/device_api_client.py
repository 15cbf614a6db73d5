"""A typed client of the device API (``/v1``, ``patchline.wire.device_api``): what a
device (the agent, or a simulated fleet) says to its server.

One place for the bearer header, the JSON bodies and the mapping of every failure to
Patchline's errors: the server unreachable (SourceUnreachableError, with a short
network reason), a credential the server no longer accepts (401), another refusal in
the server's own words and hint, and an answer that is not the expected shape.
Timeouts are the pool's (``patchline.transport.http.http_pool``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import msgspec
import urllib3

from patchline.errors import (
    DeviceSetupError,
    DirectorRefusedError,
    PatchlineError,
    SourceUnreachableError,
)
from patchline.transport.reasons import network_reason
from patchline.wire.device_api import (
    CheckIn,
    CheckInAnswer,
    EnrollRequest,
    EnrollResponse,
    ReportAck,
    ReportBatch,
)
from patchline.wire.receipt import ReceiptAck, ReceiptBatch

Answer = TypeVar("Answer")


@dataclass(frozen=True)
class _Endpoint:
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


_ENROLL = _Endpoint(
    "/v1/enroll",
    "enrollment",
    "Server {server}: {reason}",
    success=201,
    by_credential=False,
    refused=DeviceSetupError,
    malformed=DeviceSetupError,
    hint="check the enrollment token and the serial number",
)
_CHECK_IN = _Endpoint("/v1/check-in", "the check-in", "{reason}", malformed=DirectorRefusedError)
_REPORTS = _Endpoint("/v1/reports", "the reports", "cannot send reports: {reason}")
_RECEIPTS = _Endpoint("/v1/receipts", "the receipts", "cannot send receipts: {reason}")


class DeviceApiClient:
    """The device API of the server at ``server_url``, over ``pool``."""

    def __init__(self, pool: urllib3.PoolManager, server_url: str) -> None:
        self._pool = pool
        self.server_url = server_url.rstrip("/")

    def enroll(self, token: str, body: EnrollRequest) -> EnrollResponse:
        """Enroll with the fleet's enrollment ``token``; the answer holds the device id
        and credential. Raises DeviceSetupError when the server refuses or answers
        something else, SourceUnreachableError when it cannot be reached."""
        return self._post(_ENROLL, token, body, EnrollResponse)

    def check_in(self, credential: str, body: CheckIn) -> CheckInAnswer:
        """Check in; the answer is decoded, not yet verified. Raises
        SourceUnreachableError (network, HTTP status) or DirectorRefusedError (the body
        is not a CheckInAnswer)."""
        return self._post(_CHECK_IN, credential, body, CheckInAnswer)

    def send_reports(self, credential: str, batch: ReportBatch) -> ReportAck:
        """Send a batch of reports; the answer names the ones the server kept. Raises
        SourceUnreachableError when the server cannot be reached, refuses or answers
        something else."""
        return self._post(_REPORTS, credential, batch, ReportAck)

    def send_receipts(self, credential: str, batch: ReceiptBatch) -> ReceiptAck:
        """Send a batch of signed receipts; the answer names the ones the server kept.
        Raises SourceUnreachableError when the server cannot be reached, refuses or
        answers something else."""
        return self._post(_RECEIPTS, credential, batch, ReceiptAck)

    def _post(
        self, endpoint: _Endpoint, bearer: str, body: msgspec.Struct, answer: type[Answer]
    ) -> Answer:
        try:
            response = self._pool.request(
                "POST",
                f"{self.server_url}{endpoint.path}",
                body=msgspec.json.encode(body),
                headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"},
            )
        except urllib3.exceptions.HTTPError as exc:
            reason = network_reason(exc)
            message = endpoint.unreachable.format(server=self.server_url, reason=reason)
            raise SourceUnreachableError(message) from exc
        if response.status != endpoint.success:
            raise _refusal(endpoint, response)
        try:
            return msgspec.json.decode(response.data, type=answer)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise endpoint.malformed(
                f"the server's answer to {endpoint.what} is malformed: {exc}"
            ) from None


def _refusal(endpoint: _Endpoint, response: urllib3.BaseHTTPResponse) -> PatchlineError:
    """The server's refusal, in its own words (error and hint) when it gave them."""
    try:
        said = msgspec.json.decode(response.data)
        error, hint = str(said["error"]), said.get("hint")
    except (msgspec.DecodeError, KeyError, TypeError, AttributeError):
        error, hint = "", None
    hint = str(hint) if hint else endpoint.hint
    if response.status == 401 and endpoint.by_credential:
        return SourceUnreachableError(
            "the server does not accept this device's credential (401)", hint=hint
        )
    said_text = f": {error}" if error else ""
    return endpoint.refused(
        f"the server refused {endpoint.what} (HTTP {response.status}){said_text}", hint=hint
    )
