"""Offline install receipts as install reports: what the server records for each."""

from __future__ import annotations

from typing import Any

from patchline.wire.device_api import Report, ReportStatus
from patchline.wire.receipt import ReceiptBatch


def receipt_reports(batch: ReceiptBatch) -> tuple[list[Report], dict[str, dict[str, Any]]]:
    """One booted-healthy report per receipt (its id is the receipt id, so a receipt sent
    twice is stored once), and the receipt's facts and seal for the audit chain."""
    reports: list[Report] = []
    extra: dict[str, dict[str, Any]] = {}
    for sealed in batch.receipts:
        receipt = sealed.receipt
        reports.append(
            Report(
                report_id=receipt.receipt_id,
                target=receipt.target,
                build=receipt.build,
                status=ReportStatus.BOOTED_HEALTHY,
                at=receipt.installed_at,
                detail=f"offline install from {receipt.from_build} (sealed receipt)",
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
            "mac": sealed.mac,
        }
    return reports, extra
