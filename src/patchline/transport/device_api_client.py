"""A typed, blocking client of the device API (``/v1``, ``patchline.wire.device_api``):
what a device agent says to its server, over a urllib3 pool.

The protocol (paths, bearer header, bodies, the mapping of failures to Patchline's
errors) is ``patchline.transport.device_api_protocol``; this module only does the I/O.
Timeouts are the pool's (``patchline.transport.http.http_pool``).
"""

from __future__ import annotations

import msgspec
import urllib3

from patchline.transport import device_api_protocol as protocol
from patchline.transport.device_api_protocol import Answer, Endpoint
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


class DeviceApiClient:
    """The device API of the server at ``server_url``, over ``pool``."""

    def __init__(self, pool: urllib3.PoolManager, server_url: str) -> None:
        self._pool = pool
        self.server_url = server_url.rstrip("/")

    def enroll(self, token: str, body: EnrollRequest) -> EnrollResponse:
        """Enroll with the fleet's enrollment ``token``; the answer holds the device id
        and credential. Raises DeviceSetupError when the server refuses or answers
        something else, SourceUnreachableError when it cannot be reached."""
        return self._post(protocol.ENROLL, token, body, EnrollResponse)

    def check_in(self, credential: str, body: CheckIn) -> CheckInAnswer:
        """Check in; the answer is decoded, not yet verified. Raises
        SourceUnreachableError (network, HTTP status) or DirectorRefusedError (the body
        is not a CheckInAnswer)."""
        return self._post(protocol.CHECK_IN, credential, body, CheckInAnswer)

    def send_reports(self, credential: str, batch: ReportBatch) -> ReportAck:
        """Send a batch of reports; the answer names the ones the server kept. Raises
        SourceUnreachableError when the server cannot be reached, refuses or answers
        something else."""
        return self._post(protocol.REPORTS, credential, batch, ReportAck)

    def send_receipts(self, credential: str, batch: ReceiptBatch) -> ReceiptAck:
        """Send a batch of signed receipts; the answer names the ones the server kept.
        Raises SourceUnreachableError when the server cannot be reached, refuses or
        answers something else."""
        return self._post(protocol.RECEIPTS, credential, batch, ReceiptAck)

    def _post(
        self, endpoint: Endpoint, bearer: str, body: msgspec.Struct, answer: type[Answer]
    ) -> Answer:
        request = protocol.post(self.server_url, endpoint, bearer, body)
        try:
            response = self._pool.request(
                "POST", request.url, body=request.body, headers=request.headers
            )
        except urllib3.exceptions.HTTPError as exc:
            raise protocol.unreachable(endpoint, self.server_url, network_reason(exc)) from exc
        return protocol.answer_of(
            endpoint, response.status, response.data, answer, response.headers.get("Retry-After")
        )
