"""Install receipts kept on the device until the server has them.

After an install from a signed offline bundle boots healthy, the agent writes a receipt
(``patchline.wire.receipt``) sealed with the device's credential, one file in
``receipts/``, atomically. Receipts are sent at the end of every run that can reach the
server (and by ``send_reports``); a file is removed only once the server acknowledged
its id, so a receipt outlives any number of offline months and sending twice is
harmless.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import urllib3

from patchline.agent.trust import network_reason
from patchline.errors import SourceUnreachableError
from patchline.fsutil import write_atomic
from patchline.wire.receipt import Receipt, ReceiptAck, ReceiptBatch, SealedReceipt, seal

BATCH = 100


class ReceiptBox:
    """The sealed receipts waiting in ``folder``, oldest first."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def add(self, receipt: Receipt, key: bytes) -> Path:
        """Seal ``receipt`` with ``key`` and keep it durably; return its file."""
        path = self.folder / f"{time.time_ns():020d}-{receipt.receipt_id}.json"
        write_atomic(path, msgspec.json.encode(seal(receipt, key)))
        return path

    def pending(self) -> list[tuple[Path, SealedReceipt]]:
        """Every kept receipt with its file, in the order they were made."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                found.append((path, msgspec.json.decode(path.read_bytes(), type=SealedReceipt)))
            except (OSError, msgspec.ValidationError, msgspec.DecodeError):
                continue
        return found

    def send(self, pool: urllib3.PoolManager, server_url: str, credential: str) -> int:
        """POST kept receipts to ``server_url``/v1/receipts; drop the acknowledged ones.

        Returns how many were acknowledged. Raises SourceUnreachableError when the
        server cannot be reached or refuses; nothing is dropped then.
        """
        queued = self.pending()
        sent = 0
        url = f"{server_url.rstrip('/')}/v1/receipts"
        for start in range(0, len(queued), BATCH):
            batch = queued[start : start + BATCH]
            body = msgspec.json.encode(ReceiptBatch(receipts=[r for _, r in batch]))
            try:
                response = pool.request(
                    "POST",
                    url,
                    body=body,
                    headers={
                        "Authorization": f"Bearer {credential}",
                        "Content-Type": "application/json",
                    },
                )
            except urllib3.exceptions.HTTPError as exc:
                raise SourceUnreachableError(
                    f"cannot send receipts: {network_reason(exc)}"
                ) from exc
            if response.status != 200:
                raise SourceUnreachableError(
                    f"the server refused the receipts (HTTP {response.status}: "
                    f"{response.data[:200]!r})"
                )
            try:
                ack = msgspec.json.decode(response.data, type=ReceiptAck)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                raise SourceUnreachableError(f"malformed receipt acknowledgement: {exc}") from None
            accepted = set(ack.accepted)
            for path, sealed in batch:
                if sealed.receipt.receipt_id in accepted:
                    path.unlink(missing_ok=True)
                    sent += 1
        return sent
