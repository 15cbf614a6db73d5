"""A typed, asyncio client of the device API (``/v1``), over an httpx connection pool:
the same protocol as the agent's blocking client (``device_api_protocol``), for many
devices in one process (``patchline.simulate``).
"""

from __future__ import annotations

import httpx
import msgspec

from patchline.transport import device_api_protocol as protocol
from patchline.transport.device_api_protocol import Answer, Endpoint
from patchline.wire.device_api import (
    CheckIn,
    CheckInAnswer,
    EnrollRequest,
    EnrollResponse,
    ReportAck,
    ReportBatch,
)
from patchline.wire.receipt import ReceiptAck, ReceiptBatch


class AsyncDeviceApiClient:
    """The device API of the server at ``server_url``, over ``client`` (whose limits and
    timeouts apply); one client serves any number of devices."""

    def __init__(self, client: httpx.AsyncClient, server_url: str) -> None:
        self._client = client
        self.server_url = server_url.rstrip("/")

    async def enroll(self, token: str, body: EnrollRequest) -> EnrollResponse:
        """Enroll with the fleet's enrollment ``token``; errors as
        ``DeviceApiClient.enroll``."""
        return await self._post(protocol.ENROLL, token, body, EnrollResponse)

    async def check_in(self, credential: str, body: CheckIn) -> CheckInAnswer:
        """Check in; the answer is decoded, not verified. Errors as
        ``DeviceApiClient.check_in``."""
        return await self._post(protocol.CHECK_IN, credential, body, CheckInAnswer)

    async def send_reports(self, credential: str, batch: ReportBatch) -> ReportAck:
        """Send a batch of reports; errors as ``DeviceApiClient.send_reports``."""
        return await self._post(protocol.REPORTS, credential, batch, ReportAck)

    async def send_receipts(self, credential: str, batch: ReceiptBatch) -> ReceiptAck:
        """Send a batch of signed receipts; errors as ``DeviceApiClient.send_receipts``."""
        return await self._post(protocol.RECEIPTS, credential, batch, ReceiptAck)

    async def _post(
        self, endpoint: Endpoint, bearer: str, body: msgspec.Struct, answer: type[Answer]
    ) -> Answer:
        request = protocol.post(self.server_url, endpoint, bearer, body)
        try:
            response = await self._client.post(
                request.url, content=request.body, headers=request.headers
            )
        except httpx.HTTPError as exc:
            raise protocol.unreachable(endpoint, self.server_url, network_reason(exc)) from exc
        return protocol.answer_of(
            endpoint,
            response.status_code,
            response.content,
            answer,
            response.headers.get("Retry-After"),
        )


def network_reason(exc: httpx.HTTPError) -> str:
    """A short reason for an httpx failure: its kind, and its words when it has any."""
    kinds: dict[type[httpx.HTTPError], str] = {
        httpx.ConnectError: "connection refused or host unreachable",
        httpx.ConnectTimeout: "connection timed out",
        httpx.ReadTimeout: "read timed out",
    }
    kind = kinds.get(type(exc), type(exc).__name__)
    said = str(exc).strip()
    return f"{kind} ({said})" if said and said != kind else kind
