"""Exporting a date range as signed evidence, and checking it offline."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner
from sqlalchemy import text

from patchline.audit import AuditRecord, append, export, verify_export
from patchline.audit.export import ENTRIES_FILE, SUMMARY_FILE
from patchline.errors import AuditChainBrokenError, AuditExportInvalidError
from patchline.store.db import Database
from tests.audit.test_audit_chain import records

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
DAY1 = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """Entries six hours apart: March 1 (seq 1), March 2 (seq 2-5), March 3 (seq 6-8)."""
    database = Database.connect(database_url)
    with database.transaction() as session:
        append(session, records(8, start=DAY1, step=timedelta(hours=6)))
    yield database
    database.dispose()


@pytest.fixture
def signer() -> CryptoSigner:
    return CryptoSigner.generate_ed25519()


def test_export_holds_the_days_entries_and_verifies_offline(
    db: Database, signer: CryptoSigner, tmp_path: Path
) -> None:
    out = tmp_path / "evidence"
    summary = export(db, date(2026, 3, 2), date(2026, 3, 2), out, signer, now=NOW)
    assert (summary.count, summary.first_seq, summary.last_seq) == (4, 2, 5)
    assert (summary.head.seq, summary.exported_at) == (8, "2026-03-10T09:00:00.000000Z")
    lines = [json.loads(line) for line in (out / ENTRIES_FILE).read_text().splitlines()]
    assert [line["seq"] for line in lines] == [2, 3, 4, 5]
    assert all(line["at"].startswith("2026-03-02") for line in lines)
    assert lines[0]["prev_hash"] == summary.first_prev_hash
    assert [a["hash"] for a in lines[:-1]] == [b["prev_hash"] for b in lines[1:]]
    checked = verify_export(out, trusted_keyids=frozenset({signer.public_key.keyid}))
    assert checked == summary
    document = json.loads((out / SUMMARY_FILE).read_text())
    assert document["key"]["keyid"] == signer.public_key.keyid
    assert document["key"]["keytype"] == "ed25519"


@pytest.mark.parametrize(("name", "stride"), [(SUMMARY_FILE, 1), (ENTRIES_FILE, 3)])
def test_a_changed_byte_anywhere_in_an_export_is_found(
    db: Database, signer: CryptoSigner, tmp_path: Path, name: str, stride: int
) -> None:
    out = tmp_path / "evidence"
    export(db, date(2026, 3, 3), date(2026, 3, 3), out, signer, now=NOW)
    original = (out / name).read_bytes()
    for position in range(0, len(original), stride):
        changed = bytearray(original)
        changed[position] ^= 0x01
        (out / name).write_bytes(bytes(changed))
        with pytest.raises(AuditExportInvalidError):
            verify_export(out)
    (out / name).write_bytes(original)
    verify_export(out)


def test_export_signed_by_an_untrusted_key_is_refused(
    db: Database, signer: CryptoSigner, tmp_path: Path
) -> None:
    export(db, date(2026, 3, 1), date(2026, 3, 3), tmp_path, signer, now=NOW)
    with pytest.raises(AuditExportInvalidError, match="not trusted"):
        verify_export(tmp_path, trusted_keyids=frozenset({"a" * 64}))


def test_dropped_last_line_is_found(db: Database, signer: CryptoSigner, tmp_path: Path) -> None:
    export(db, date(2026, 3, 1), date(2026, 3, 3), tmp_path, signer, now=NOW)
    lines = (tmp_path / ENTRIES_FILE).read_bytes().splitlines(keepends=True)
    (tmp_path / ENTRIES_FILE).write_bytes(b"".join(lines[:-1]))
    with pytest.raises(AuditExportInvalidError, match="not the file that was signed"):
        verify_export(tmp_path)


def test_export_of_a_day_without_entries_is_empty_and_valid(
    db: Database, signer: CryptoSigner, tmp_path: Path
) -> None:
    summary = export(db, date(2026, 4, 1), date(2026, 4, 30), tmp_path, signer, now=NOW)
    assert (summary.count, summary.first_seq, summary.last_hash) == (0, None, None)
    assert (tmp_path / ENTRIES_FILE).read_bytes() == b""
    assert verify_export(tmp_path).count == 0


def test_export_keeps_the_span_whole_when_times_are_out_of_order(
    db: Database, signer: CryptoSigner, tmp_path: Path
) -> None:
    late = datetime(2026, 3, 4, 1, 0, tzinfo=UTC)
    with db.transaction() as session:
        append(session, [AuditRecord(late, "report", "d", "d", {})])  # seq 9, March 4
        append(session, [AuditRecord(DAY1, "report", "d", "d", {})])  # seq 10, March 1
        append(session, [AuditRecord(late, "report", "d", "d", {})])  # seq 11, March 4
    summary = export(db, date(2026, 3, 4), date(2026, 3, 4), tmp_path, signer, now=NOW)
    assert (summary.first_seq, summary.last_seq, summary.count) == (9, 11, 3)
    assert verify_export(tmp_path).count == 3


def test_export_refuses_a_range_whose_chain_is_broken(
    db: Database, signer: CryptoSigner, tmp_path: Path
) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_entries SET payload = '{}' WHERE seq = 4"))
    with pytest.raises(AuditChainBrokenError, match="entry 4"):
        export(db, date(2026, 3, 2), date(2026, 3, 2), tmp_path, signer, now=NOW)
    assert not (tmp_path / SUMMARY_FILE).exists()
