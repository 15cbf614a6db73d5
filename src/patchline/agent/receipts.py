"""Install receipts kept on the device until the server has them.

After an install from a signed offline bundle boots healthy, the agent writes a receipt
(``patchline.wire.receipt``) signed with the device's Ed25519 key
(``patchline.agent.device_key``), one file in ``receipts/``, atomically. Receipts are
sent at the end of every run that can reach the server (and by ``send_reports``); a
file is removed only once the server acknowledged its id, so a receipt outlives any
number of offline months and sending twice is harmless. A receipt kept by an older
agent, sealed with an HMAC of the credential, is signed with the device key when it is
next read, so it is not stranded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import urllib3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from patchline.agent.trust import network_reason
from patchline.errors import SourceUnreachableError
from patchline.fsutil import write_atomic
from patchline.wire.receipt import Receipt, ReceiptAck, ReceiptBatch, SignedReceipt, sign

BATCH = 100


class _SealedReceipt(msgspec.Struct, forbid_unknown_fields=True):
    """A receipt as older agents kept it: sealed with an HMAC of the credential."""

    receipt: Receipt
    mac: str


class ReceiptBox:
    """The signed receipts waiting in ``folder``, oldest first.

    ``key``, when given, returns the device key that signs receipts kept by an older
    agent (HMAC-sealed) as they are read; without it they are left out.
    """

    def __init__(self, folder: Path, key: Callable[[], Ed25519PrivateKey] | None = None) -> None:
        self.folder = folder
        self._key = key

    def add(self, receipt: Receipt, key: Ed25519PrivateKey) -> Path:
        """Sign ``receipt`` with the device key ``key`` and keep it durably; return its file."""
        path = self.folder / f"{time.time_ns():020d}-{receipt.receipt_id}.json"
        write_atomic(path, msgspec.json.encode(sign(receipt, key)))
        return path

    def pending(self) -> list[tuple[Path, SignedReceipt]]:
        """Every kept receipt with its file, in the order they were made."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                data = path.read_bytes()
            except OSError:
                continue
            try:
                found.append((path, msgspec.json.decode(data, type=SignedReceipt)))
            except (msgspec.ValidationError, msgspec.DecodeError):
                signed = self._sign_sealed(path, data)
                if signed is not None:
                    found.append((path, signed))
        return found

    def _sign_sealed(self, path: Path, data: bytes) -> SignedReceipt | None:
        """Sign a receipt an older agent sealed with an HMAC, in place; None otherwise."""
        if self._key is None:
            return None
        try:
            sealed = msgspec.json.decode(data, type=_SealedReceipt)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None
        signed = sign(sealed.receipt, self._key())
        write_atomic(path, msgspec.json.encode(signed))
        return signed

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
                raise _refused(response)
            try:
                ack = msgspec.json.decode(response.data, type=ReceiptAck)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                raise SourceUnreachableError(f"malformed receipt acknowledgement: {exc}") from None
            accepted = set(ack.accepted)
            for path, signed in batch:
                if signed.receipt.receipt_id in accepted:
                    path.unlink(missing_ok=True)
                    sent += 1
        return sent


def _refused(response: urllib3.BaseHTTPResponse) -> SourceUnreachableError:
    """The server's refusal in its own words (error and hint), when it gave them."""
    try:
        said = msgspec.json.decode(response.data)
        error, hint = str(said["error"]), said.get("hint")
    except (msgspec.DecodeError, KeyError, TypeError, AttributeError):
        error, hint = repr(response.data[:200]), None
    return SourceUnreachableError(
        f"the server refused the receipts (HTTP {response.status}): {error}",
        hint=str(hint) if hint else None,
    )
