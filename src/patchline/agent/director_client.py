"""The device side of the director: verify the signed answer to a check-in.

The answer is trusted only once it verifies against the director root the device
shipped with, names this device, has not expired and is not older than an answer
already seen (``patchline.wire.director.verify_decision``).
"""

from __future__ import annotations

from datetime import datetime

from tuf.api.metadata import Metadata, Root

from patchline.errors import DirectorRefusedError
from patchline.wire.device_api import CheckInAnswer
from patchline.wire.director import DirectorAnswerError, DirectorDecision, verify_decision


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
