"""Offline install receipts in an audit export, checked with nothing but the export.

A ``receipt`` entry's payload keeps the exact text the device signed (``receipt``: the
receipt's canonical JSON), the Ed25519 ``signature`` (hex), the device's ``public_key``
(raw 32 bytes, hex) and its ``keyid`` (sha256 of the raw key). A third party, a
regulator's monitor, checks that the signature verifies with that key, that the
entry's facts (device, report id, build, target, hashes, bundle, time) are those the
device signed, and, when the export also holds the device's ``enroll`` entry, that the
key is the one the device enrolled with. None of it needs a secret of the server's: the
server never holds the private key, so it cannot make a receipt that passes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import msgspec

from patchline.wire.receipt import Receipt, key_id, signature_ok

#: The payload fields of a receipt entry that restate the signed receipt, and the
#: receipt field each must equal.
_RESTATED = {
    "report_id": "receipt_id",
    "target": "target",
    "build": "build",
    "device_at": "installed_at",
    "bundle_id": "bundle_id",
    "bundle_version": "bundle_version",
    "from_build": "from_build",
    "sha256": "sha256",
    "security_patch_level": "security_patch_level",
}


@dataclass
class ReceiptCheck:
    """Checks the entries of one export in seq order; remembers each device's enrolled key."""

    #: device id -> (public key hex or None, seq of the enroll entry that named it)
    enrolled: dict[str, tuple[str | None, int]] = field(default_factory=dict)
    #: How many receipt entries verified.
    verified: int = 0

    def check(self, line: dict[str, Any]) -> str | None:
        """What is wrong with this exported entry's receipt, or None (also for other kinds)."""
        kind = line["kind"]
        if kind == "enroll":
            payload = json.loads(line["payload"])
            key = payload.get("public_key") if isinstance(payload, dict) else None
            self.enrolled[line["subject"]] = (key if isinstance(key, str) else None, line["seq"])
            return None
        if kind != "receipt":
            return None
        problem = _check_receipt(line, self.enrolled.get(line["subject"]))
        if problem is None:
            self.verified += 1
        return problem


def _check_receipt(line: dict[str, Any], enrolled: tuple[str | None, int] | None) -> str | None:
    seq = line["seq"]
    payload = json.loads(line["payload"])
    if not isinstance(payload, dict):
        return f"entry {seq} is a receipt whose payload is not an object"
    text, signature, key_hex = (payload.get(k) for k in ("receipt", "signature", "public_key"))
    if not (isinstance(text, str) and isinstance(signature, str) and isinstance(key_hex, str)):
        return (
            f"entry {seq} is a receipt without the device's signature, signed text and "
            "public key, so it cannot be checked"
        )
    try:
        public_key = bytes.fromhex(key_hex)
    except ValueError:
        return f"entry {seq}: the receipt's public key is not hex"
    if len(public_key) != 32:
        return f"entry {seq}: the receipt's public key is not an Ed25519 key"
    keyid = key_id(public_key)
    if payload.get("keyid") != keyid:
        return f"entry {seq}: the receipt's key id does not match its public key"
    if not signature_ok(text.encode("utf-8"), signature, public_key):
        return (
            f"entry {seq}: the receipt is not signed by device key {keyid[:16]} "
            "(its signature does not verify: changed after signing, or not made by the device)"
        )
    try:
        receipt = msgspec.json.decode(text, type=Receipt)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return f"entry {seq}: the signed receipt is malformed ({exc})"
    if line["subject"] != receipt.device_id:
        return (
            f"entry {seq} is recorded for device {line['subject']}, but the device signed "
            f"the receipt as {receipt.device_id}"
        )
    if payload.get("source") != f"bundle {receipt.bundle_id}":
        return f"entry {seq}: its source is not the bundle the device signed for"
    for name, signed_name in _RESTATED.items():
        if payload.get(name) != getattr(receipt, signed_name):
            return (
                f"entry {seq}: its {name} ({payload.get(name)!r}) is not what the device "
                f"signed ({getattr(receipt, signed_name)!r})"
            )
    if enrolled is not None and enrolled[0] != key_hex:
        named = f"key {key_id(bytes.fromhex(enrolled[0]))[:16]}" if enrolled[0] else "no key"
        return (
            f"entry {seq}: the receipt is signed by key {keyid[:16]}, but device "
            f"{receipt.device_id} enrolled with {named} (entry {enrolled[1]})"
        )
    return None
