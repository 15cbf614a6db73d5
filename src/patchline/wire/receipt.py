"""Install receipts: what a device installed from an offline bundle, sealed for the server.

``POST /v1/receipts`` (Bearer <device credential>) takes a ReceiptBatch and answers a
ReceiptAck. A receipt is sealed with HMAC-SHA256 over its canonical JSON (msgspec
encodes fields in the order declared here) under ``receipt_key(secret)``: sha256 of the
device's credential secret, which is also exactly what the server stores for the
device, so the server can verify a receipt without ever holding the secret.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

import msgspec

from patchline.wire.device_api import IsoDate, Name, Sha256, ShortText, Uuid

Hex16 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{16}$")]
Mac = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]


class Receipt(msgspec.Struct, forbid_unknown_fields=True):
    """One install from an offline bundle that booted healthy."""

    receipt_id: Uuid
    device_id: Name
    bundle_id: Hex16  # the first 16 hex digits of sha256(offline-snapshot.json)
    bundle_version: Annotated[int, msgspec.Meta(ge=0)]
    model: Name
    build: Name
    from_build: Name
    target: ShortText
    sha256: Sha256
    security_patch_level: IsoDate
    installed_at: ShortText  # ISO 8601 instant on the device clock
    delta: bool = False


class SealedReceipt(msgspec.Struct, forbid_unknown_fields=True):
    """A receipt and its HMAC-SHA256 (hex)."""

    receipt: Receipt
    mac: Mac


class ReceiptBatch(msgspec.Struct, forbid_unknown_fields=True):
    """Receipts kept on the device, sent together (at most 100)."""

    receipts: Annotated[list[SealedReceipt], msgspec.Meta(min_length=1, max_length=100)]


class ReceiptAck(msgspec.Struct):
    """The receipt ids now durable on the server (new or already known)."""

    accepted: list[str]


def receipt_key(secret: str) -> bytes:
    """The sealing key of a device: sha256 of its credential secret."""
    return hashlib.sha256(secret.encode()).digest()


def seal(receipt: Receipt, key: bytes) -> SealedReceipt:
    """The receipt with its MAC under ``key``."""
    mac = hmac.new(key, msgspec.json.encode(receipt), hashlib.sha256).hexdigest()
    return SealedReceipt(receipt=receipt, mac=mac)


def seal_ok(sealed: SealedReceipt, key: bytes) -> bool:
    """True when ``sealed``'s MAC is right under ``key`` (constant-time comparison)."""
    return hmac.compare_digest(seal(sealed.receipt, key).mac, sealed.mac)
