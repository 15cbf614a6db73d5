"""The device side of the director: check in, and verify the signed answer.

The answer is trusted only once it verifies against the director root the device
shipped with, names this device, has not expired and is not older than an answer
already seen (``patchline.wire.director.verify_decision``).
"""

from __future__ import annotations

from datetime import datetime

import msgspec
import urllib3
from tuf.api.metadata import Metadata, Root

from patchline.agent.trust import network_reason
from patchline.errors import DirectorRefusedError, SourceUnreachableError
from patchline.wire.device_api import CheckIn, CheckInAnswer
from patchline.wire.director import DirectorAnswerError, DirectorDecision, verify_decision


def check_in(
    pool: urllib3.PoolManager, server_url: str, credential: str, body: CheckIn
) -> CheckInAnswer:
    """POST ``body`` to the server's /v1/check-in and decode its answer (not yet verified).

    Raises SourceUnreachableError (network, HTTP status) or DirectorRefusedError (the
    body is not a CheckInAnswer).
    """
    url = f"{server_url.rstrip('/')}/v1/check-in"
    try:
        response = pool.request(
            "POST",
            url,
            body=msgspec.json.encode(body),
            headers={"Authorization": f"Bearer {credential}", "Content-Type": "application/json"},
        )
    except urllib3.exceptions.HTTPError as exc:
        raise SourceUnreachableError(network_reason(exc)) from exc
    if response.status == 401:
        raise SourceUnreachableError("the server does not accept this device's credential (401)")
    if response.status != 200:
        raise SourceUnreachableError(f"check-in answered HTTP {response.status}")
    try:
        return msgspec.json.decode(response.data, type=CheckInAnswer)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise DirectorRefusedError(f"the check-in answer is malformed: {exc}") from None


def verified_decision(
    answer: CheckInAnswer,
    director_root: bytes,
    *,
    device_id: str,
    now: datetime,
    last_version: int,
) -> DirectorDecision:
    """The director's decision in ``answer`` once verified for ``device_id`` at ``now``.

    Raises DirectorRefusedError, saying why, for an unsigned, expired, replayed
    (another device's) or rolled-back answer.
    """
    try:
        root = Metadata[Root].from_bytes(director_root).signed
    except Exception as exc:
        raise DirectorRefusedError(f"the device's director root is unreadable: {exc}") from None
    try:
        return verify_decision(
            root, answer.director, device_id=device_id, now=now, last_version=last_version
        )
    except DirectorAnswerError as exc:
        raise DirectorRefusedError(exc.message, hint=exc.hint) from None
