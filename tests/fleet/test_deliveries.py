"""Deliveries per rule and offline receipts per release are counted by the database."""

from __future__ import annotations

from datetime import UTC, date, datetime

from patchline.fleet.deliveries import (
    ReceiptDeliveries,
    RuleDeliveries,
    deliveries_by_rule,
    receipts_by_release,
)
from patchline.store.db import Database
from patchline.store.models import Device, InstallReport

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _device(n: int, rule: str | None, state: str | None) -> Device:
    return Device(
        id=f"dev-{n}",
        model="alpha",
        serial=f"SN{n}",
        hardware_id=f"hw-{n}",
        region="DE",
        deployed_on=date(2025, 1, 1),
        credential_hash=bytes(32),
        enrolled_at=NOW,
        build="1.0",
        security_patch_level=date(2025, 1, 1),
        assigned_build="1.1" if rule else None,
        assigned_rule=rule,
        install_state=state,
    )


def _report(n: int, device: int, target: str, source: str) -> InstallReport:
    return InstallReport(
        report_id=f"r-{n}",
        device_id=f"dev-{device}",
        target=target,
        build=target.split("/")[1],
        status="booted-healthy",
        code="none",
        source=source,
        device_at=NOW.isoformat(),
        received_at=NOW,
    )


def test_deliveries_are_counted_per_rule_and_receipts_per_release(database_url: str) -> None:
    db = Database.connect(database_url)
    try:
        with db.transaction() as session:
            states = ("offered", "installed", "booted-healthy", "failed", "rolled-back")
            session.add_all(_device(n, "licence", states[n % 5]) for n in range(10))
            session.add_all(_device(n, "normal", "booted-healthy") for n in range(10, 13))
            session.add_all(_device(n, None, None) for n in range(13, 15))
            session.flush()
            session.add_all(
                [
                    _report(1, 13, "alpha/1.1/image.img", "bundle B-1"),
                    _report(2, 13, "alpha/1.1/image.img", "bundle B-2"),
                    _report(3, 14, "alpha/1.1/image.img", "bundle B-1"),
                    _report(4, 14, "alpha/1.2/image.img", "bundle B-3"),
                    _report(5, 1, "alpha/1.1/image.img", "Server http://ota.example"),
                    _report(6, 2, "alpha/1.1/image.img", "SD card /media/card"),
                ]
            )
        with db.reading_session() as session:
            assert deliveries_by_rule(session) == [
                RuleDeliveries("licence", 10, 4),
                RuleDeliveries("normal", 3, 3),
            ]
            assert receipts_by_release(session) == [
                ReceiptDeliveries("alpha/1.1/image.img", 2, 3),
                ReceiptDeliveries("alpha/1.2/image.img", 1, 1),
            ]
    finally:
        db.dispose()
