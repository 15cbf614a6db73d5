"""Every kind of tampering with the stored chain is found, at the right entry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, text

from patchline.audit import entry_hash, verify
from patchline.audit.chain import ENTRY_COLUMNS
from patchline.audit.format import format_at
from patchline.store.db import Database
from patchline.store.models import AuditEntry
from tests.audit.test_audit_chain import fill

ENTRIES = 10


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A chain of ten entries, verified whole before each test tampers with it."""
    database = Database.connect(database_url)
    fill(database, 6)
    fill(database, ENTRIES - 6)
    assert verify(database).ok
    yield database
    database.dispose()


def sql(db: Database, statement: str, **params: object) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(statement), params)


def hash_of(db: Database, seq: int) -> str:
    with db.engine.begin() as conn:
        return str(
            conn.execute(
                text("SELECT hash FROM audit_entries WHERE seq = :s"), {"s": seq}
            ).scalar_one()
        )


def rehash(db: Database, seq: int) -> None:
    """Recompute entry ``seq``'s hash from its stored fields, as a careful forger would."""
    with db.engine.begin() as conn:
        row = conn.execute(select(*ENTRY_COLUMNS).where(AuditEntry.seq == seq)).one()
    digest = entry_hash(
        row.seq, format_at(row.at), row.kind, row.actor, row.subject, row.payload, row.prev_hash
    )
    sql(db, "UPDATE audit_entries SET hash = :h WHERE seq = :s", h=digest, s=seq)


def problem(db: Database) -> tuple[int, str, int]:
    result = verify(db, batch=3)
    assert result.problem is not None, "tampering went unnoticed"
    return result.problem.seq, result.problem.code, result.count


def test_edited_payload_is_found_at_its_entry(db: Database) -> None:
    sql(db, """UPDATE audit_entries SET payload = '{"install":"evil.img"}' WHERE seq = 5""")
    assert problem(db) == (5, "hash_mismatch", 4)


def test_edited_actor_is_found_at_its_entry(db: Database) -> None:
    sql(db, "UPDATE audit_entries SET actor = 'someone-else' WHERE seq = 1")
    assert problem(db) == (1, "hash_mismatch", 0)


def test_edited_hash_is_found_at_its_entry(db: Database) -> None:
    sql(db, "UPDATE audit_entries SET hash = :h WHERE seq = 7", h="0" * 64)
    assert problem(db) == (7, "hash_mismatch", 6)


def test_edited_and_rehashed_entry_breaks_the_next_link(db: Database) -> None:
    sql(db, """UPDATE audit_entries SET payload = '{"install":"evil.img"}' WHERE seq = 5""")
    rehash(db, 5)
    assert problem(db) == (6, "link_mismatch", 5)


def test_deleted_middle_entry_is_found_as_missing(db: Database) -> None:
    sql(db, "DELETE FROM audit_entries WHERE seq = 4")
    assert problem(db) == (4, "missing", 3)


def test_deleted_first_entry_is_found_as_missing(db: Database) -> None:
    sql(db, "DELETE FROM audit_entries WHERE seq = 1")
    assert problem(db) == (1, "missing", 0)


def test_entry_inserted_in_the_middle_breaks_the_link_after_it(db: Database) -> None:
    # Make room at seq 6 (in two steps: a unique key cannot shift in place everywhere).
    sql(db, "UPDATE audit_entries SET seq = seq + 1000 WHERE seq >= 6")
    sql(db, "UPDATE audit_entries SET seq = seq - 999 WHERE seq >= 1000")
    forged_prev = hash_of(db, 5)
    forged = entry_hash(6, "2026-03-01T12:05:30.000000Z", "decision", "x", "y", "{}", forged_prev)
    sql(
        db,
        "INSERT INTO audit_entries (seq, at, kind, actor, subject, payload, prev_hash, hash) "
        "VALUES (6, :at, 'decision', 'x', 'y', '{}', :p, :h)",
        at="2026-03-01 12:05:30.000000",
        p=forged_prev,
        h=forged,
    )
    sql(db, "UPDATE audit_head SET seq = 11, hash = :h WHERE id = 1", h=hash_of(db, 11))
    assert problem(db) == (7, "link_mismatch", 6)  # the old entry 6, renumbered


def test_entry_added_past_the_head_is_found(db: Database) -> None:
    prev = hash_of(db, ENTRIES)
    forged = entry_hash(11, "2026-03-01T13:00:00.000000Z", "decision", "x", "y", "{}", prev)
    sql(
        db,
        "INSERT INTO audit_entries (seq, at, kind, actor, subject, payload, prev_hash, hash) "
        "VALUES (11, :at, 'decision', 'x', 'y', '{}', :p, :h)",
        at="2026-03-01 13:00:00.000000",
        p=prev,
        h=forged,
    )
    assert problem(db) == (11, "head_behind", 11)


def test_truncated_tail_is_found(db: Database) -> None:
    sql(db, "DELETE FROM audit_entries WHERE seq >= 8")
    assert problem(db) == (8, "tail_missing", 7)


def test_rewound_head_is_found(db: Database) -> None:
    sql(db, "UPDATE audit_head SET seq = 8, hash = :h WHERE id = 1", h=hash_of(db, 8))
    assert problem(db) == (9, "head_behind", 10)


def test_rewound_head_with_the_tail_deleted_too_is_found_only_by_an_older_witness(
    db: Database,
) -> None:
    """A consistent rewind (tail and head cut together) leaves a shorter whole chain; an
    export or a recorded head is what proves the entries existed."""
    witness = verify(db).head
    sql(db, "DELETE FROM audit_entries WHERE seq >= 9")
    sql(db, "UPDATE audit_head SET seq = 8, hash = :h WHERE id = 1", h=hash_of(db, 8))
    result = verify(db)
    assert result.ok
    assert witness is not None
    assert result.head is not None
    assert result.head.seq < witness.seq


def test_edited_head_hash_is_found(db: Database) -> None:
    sql(db, "UPDATE audit_head SET hash = :h WHERE id = 1", h="f" * 64)
    assert problem(db) == (10, "head_mismatch", 10)


def test_deleted_head_is_found(db: Database) -> None:
    sql(db, "DELETE FROM audit_head")
    assert problem(db) == (10, "head_missing", 10)
