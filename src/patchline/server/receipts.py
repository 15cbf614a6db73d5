"""Offline install receipts: which the server accepts, and what it records for each."""

from __future__ import annotations

from typing import Any

from patchline.wire.device_api import Report, ReportStatus
from patchline.wire.receipt import ReceiptBatch, key_id, receipt_bytes, signed_by

REENROLL_HINT = (
    "nothing was stored; re-enroll the device (patchline agent enroll) so that it sends "
    "its receipt key; the device keeps its receipts and sends them again"
)


def refusal(
    batch: ReceiptBatch, device_id: str, public_key: bytes | None
) -> tuple[str, str] | None:
    """Why the batch is refused as a whole (error and hint), or None when every receipt
    is this device's and signed by the key it enrolled with."""
    if public_key is None:
        return (
            f"device {device_id} has no receipt key: it enrolled before receipts were "
            "signed by a device key, or with an agent that has none",
            REENROLL_HINT,
        )
    expected = key_id(public_key)
    for signed in batch.receipts:
        receipt = signed.receipt
        if receipt.device_id != device_id:
            return (
                f"receipt {receipt.receipt_id} is for device {receipt.device_id}, not {device_id}",
                "nothing was stored; a device sends only its own receipts",
            )
        if signed.keyid != expected:
            return (
                f"receipt {receipt.receipt_id} is not signed by this device's key: it names "
                f"key {signed.keyid[:16]}, the device enrolled with key {expected[:16]}",
                "nothing was stored; a receipt signed with a key the device no longer "
                "has (before a factory reset) cannot be verified",
            )
        if not signed_by(signed, public_key):
            return (
                f"receipt {receipt.receipt_id} is not signed by this device's key: "
                "its signature does not verify",
                "nothing was stored; the receipt was changed after it was signed",
            )
    return None


def receipt_reports(
    batch: ReceiptBatch, public_key: bytes
) -> tuple[list[Report], dict[str, dict[str, Any]]]:
    """One booted-healthy report per receipt (its id is the receipt id, so a receipt sent
    twice is stored once), and what the audit chain keeps of it: its facts, the exact
    signed text, the signature and the device's public key, so that an audit export
    alone proves the device signed it."""
    reports: list[Report] = []
    extra: dict[str, dict[str, Any]] = {}
    for signed in batch.receipts:
        receipt = signed.receipt
        reports.append(
            Report(
                report_id=receipt.receipt_id,
                target=receipt.target,
                build=receipt.build,
                status=ReportStatus.BOOTED_HEALTHY,
                at=receipt.installed_at,
                detail=f"offline install from {receipt.from_build} (signed receipt)",
                source=f"bundle {receipt.bundle_id}",
                delta=receipt.delta,
            )
        )
        extra[receipt.receipt_id] = {
            "bundle_id": receipt.bundle_id,
            "bundle_version": receipt.bundle_version,
            "from_build": receipt.from_build,
            "sha256": receipt.sha256,
            "security_patch_level": receipt.security_patch_level,
            "receipt": receipt_bytes(receipt).decode("utf-8"),
            "signature": signed.signature,
            "public_key": public_key.hex(),
            "keyid": key_id(public_key),
        }
    return reports, extra
