"""Appending to the audit chain and verifying it, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from patchline.audit import (
    GENESIS_HASH,
    AuditRecord,
    append,
    canonical_json,
    entry_hash,
    read_head,
    verify,
)
from patchline.errors import AuditRecordError
from patchline.store.db import Database
from patchline.store.models import AuditEntry

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def records(
    n: int, start: datetime = T0, step: timedelta = timedelta(minutes=1)
) -> list[AuditRecord]:
    """``n`` distinct decision records, one ``step`` apart."""
    return [
        AuditRecord(
            start + i * step,
            "decision",
            "server-1",
            f"device-{i}",
            {"install": f"aurora/1.{i}.img", "reasons": ["security"], "spl": date(2026, 1, 5)},
        )
        for i in range(n)
    ]


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database.connect(database_url)
    yield database
    database.dispose()


def fill(db: Database, n: int, **kwargs: object) -> None:
    """Append ``n`` records in one transaction."""
    with db.transaction() as session:
        append(session, records(n, **kwargs))  # type: ignore[arg-type]


def test_first_entry_links_to_genesis_and_each_next_to_the_one_before(db: Database) -> None:
    with db.transaction() as session:
        entries = append(session, records(3))
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS_HASH
    assert entries[1].prev_hash == entries[0].hash
    assert entries[2].prev_hash == entries[1].hash
    with db.transaction() as session:
        head = read_head(session)
        stored = session.scalars(select(AuditEntry.hash).order_by(AuditEntry.seq)).all()
    assert head is not None
    assert (head.seq, head.hash) == (3, entries[2].hash)
    assert stored == [e.hash for e in entries]


def test_stored_hash_is_sha256_of_the_canonical_field_array(db: Database) -> None:
    with db.transaction() as session:
        (entry,) = append(session, records(1))
    encoded = json.dumps(
        [
            "patchline.audit/1",
            1,
            "2026-03-01T12:00:00.000000Z",
            "decision",
            "server-1",
            "device-0",
            '{"install":"aurora/1.0.img","reasons":["security"],"spl":"2026-01-05"}',
            GENESIS_HASH,
        ],
        separators=(",", ":"),
    ).encode()
    assert entry.hash == hashlib.sha256(encoded).hexdigest()


def test_later_transactions_continue_the_same_chain(db: Database) -> None:
    for _ in range(3):
        fill(db, 4)
    result = verify(db)
    assert result.ok, result.problem
    assert result.count == 12
    assert result.head is not None
    assert result.head.seq == 12


def test_rolled_back_append_leaves_chain_and_head_as_they_were(db: Database) -> None:
    fill(db, 2)

    def fails_after_appending() -> None:
        with db.transaction() as session:
            append(session, records(5))
            raise RuntimeError("the caller's work failed")

    with pytest.raises(RuntimeError):
        fails_after_appending()
    with db.transaction() as session:
        head = read_head(session)
        count = session.scalar(select(func.count()).select_from(AuditEntry))
    assert head is not None
    assert (head.seq, count) == (2, 2)
    assert verify(db).ok


def test_empty_chain_verifies_with_no_entries_and_no_head(db: Database) -> None:
    result = verify(db)
    assert result.ok
    assert (result.count, result.head) == (0, None)
    with db.transaction() as session:
        assert append(session, []) == []


def test_verify_in_small_batches_checks_every_entry(db: Database) -> None:
    fill(db, 23)
    result = verify(db, batch=4)
    assert result.ok, result.problem
    assert result.count == 23


def test_verify_inside_a_session_reads_through_it(db: Database) -> None:
    fill(db, 5)
    with db.transaction() as session:
        append(session, records(2))
        result = verify(session)  # sees its own uncommitted appends
    assert result.ok, result.problem
    assert result.count == 7


def test_times_in_any_zone_are_stored_and_hashed_as_utc(db: Database) -> None:
    east = timezone(timedelta(hours=5, minutes=30))
    at = datetime(2026, 3, 1, 17, 30, 0, 123456, tzinfo=east)
    with db.transaction() as session:
        (entry,) = append(session, [AuditRecord(at, "report", "device-9", "device-9", {})])
        stored = session.scalar(select(AuditEntry.at))
    assert stored is not None
    assert stored.replace(tzinfo=stored.tzinfo or UTC) == at
    assert entry.hash == entry_hash(
        1, "2026-03-01T12:00:00.123456Z", "report", "device-9", "device-9", "{}", GENESIS_HASH
    )
    assert verify(db).ok


def test_payload_is_canonical_json_with_iso_dates_and_unicode_kept() -> None:
    record = AuditRecord(
        T0, "policy", "officer", "rule-1", {"z": 1, "a": {"d": T0, "é": "ü"}, "m": [1.5, None]}
    )
    assert record.payload_json == (
        '{"a":{"d":"2026-03-01T12:00:00+00:00","é":"ü"},"m":[1.5,null],"z":1}'
    )
    assert canonical_json({"b": 1, "a": 2}) == '{"a":2,"b":1}'


def test_shifting_text_between_fields_changes_the_hash() -> None:
    at = "2026-03-01T12:00:00.000000Z"
    one = entry_hash(1, at, "decision", "ab", "c", "{}", GENESIS_HASH)
    other = entry_hash(1, at, "decision", "a", "bc", "{}", GENESIS_HASH)
    assert one != other


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"at": datetime(2026, 3, 1)}, "no timezone"),
        ({"kind": "Decision!"}, "lowercase word"),
        ({"actor": "x" * 129}, "longer than 128"),
        ({"subject": "a\x00b"}, "NUL"),
        ({"payload": {"x": float("nan")}}, "canonical JSON"),
        ({"payload": {"x": object()}}, "canonical JSON"),
        ({"payload": {"x": "\ud800"}}, "canonical JSON"),
    ],
)
def test_malformed_records_are_refused_on_construction(
    kwargs: dict[str, object], fragment: str
) -> None:
    fields: dict[str, object] = {
        "at": T0,
        "kind": "decision",
        "actor": "server",
        "subject": "d",
        "payload": {},
    }
    with pytest.raises(AuditRecordError, match=fragment):
        AuditRecord(**(fields | kwargs))  # type: ignore[arg-type]
