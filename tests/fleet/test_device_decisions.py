"""A device's decisions over time come from the audit chain, newest first, in pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from patchline.audit import AuditRecord, append
from patchline.fleet.device_decisions import device_decisions
from patchline.store.db import Database

START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def _decision(n: int, device: str) -> AuditRecord:
    payload = {
        "action": "install" if n % 2 else "none",
        "target": f"alpha/1.{n}/image.img" if n % 2 else None,
        "build": f"1.{n}" if n % 2 else None,
        "running": "1.0",
        "reasons": [f"reason {n}"],
        "rules": ["normal"],
        "allowed_by": "normal" if n % 2 else None,
    }
    return AuditRecord(START + timedelta(hours=n), "decision", "director", device, payload)


def test_decisions_are_paged_newest_first_and_only_the_devices(database_url: str) -> None:
    db = Database.connect(database_url)
    try:
        with db.transaction() as session:
            records = [_decision(n, "dev-1") for n in range(5)]
            records += [_decision(9, "dev-2")]
            records += [AuditRecord(START, "report", "device", "dev-1", {"status": "installed"})]
            append(session, records)
        with db.reading_session() as session:
            first = device_decisions(session, "dev-1", page=1, per_page=2)
            second = device_decisions(session, "dev-1", page=2, per_page=2)
            last = device_decisions(session, "dev-1", page=3, per_page=2)
            beyond = device_decisions(session, "dev-1", page=4, per_page=2)
    finally:
        db.dispose()
    assert [e.reasons for e in first.entries] == [["reason 4"], ["reason 3"]]
    assert [p.more for p in (first, second, last, beyond)] == [True, True, False, False]
    assert [e.reasons for e in second.entries] == [["reason 2"], ["reason 1"]]
    assert [e.reasons for e in last.entries] == [["reason 0"]]
    assert beyond.entries == []
    newest_offer = first.entries[1]
    assert (newest_offer.action, newest_offer.build, newest_offer.allowed_by) == (
        "install",
        "1.3",
        "normal",
    )
    assert newest_offer.at == START + timedelta(hours=3)
