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

from patchline.agent.spool import send_in_batches
from patchline.fsutil import write_atomic
from patchline.transport.device_api_client import DeviceApiClient
from patchline.wire.receipt import Receipt, ReceiptBatch, SignedReceipt, sign


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
        client = DeviceApiClient(pool, server_url)
        return send_in_batches(
            self.pending(),
            lambda receipts: client.send_receipts(credential, ReceiptBatch(receipts)).accepted,
            lambda signed: signed.receipt.receipt_id,
        )
