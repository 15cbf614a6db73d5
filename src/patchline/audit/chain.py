"""Appending to the hash chain, and proving it unbroken.

Appends from any number of processes stay one chain because each one locks the head
row first (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite write transactions are
``BEGIN IMMEDIATE`` and so already exclusive), and ``seq`` is the primary key, so a
fork could not even be stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any, cast

from sqlalchemy import Row, Table, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patchline.audit.format import GENESIS_HASH, AuditRecord, entry_hash, format_at
from patchline.errors import AuditError
from patchline.store.db import Database
from patchline.store.models import AuditEntry, AuditHead

HEAD_ID = 1
_ENTRIES = cast(Table, AuditEntry.__table__)
ENTRY_COLUMNS = (
    AuditEntry.seq,
    AuditEntry.at,
    AuditEntry.kind,
    AuditEntry.actor,
    AuditEntry.subject,
    AuditEntry.payload,
    AuditEntry.prev_hash,
    AuditEntry.hash,
)


@dataclass(frozen=True)
class ChainHead:
    """The newest link: its sequence number (0 for an empty chain) and its hash."""

    seq: int
    hash: str


GENESIS = ChainHead(0, GENESIS_HASH)


def read_head(session: Session) -> ChainHead | None:
    """The head row as stored, or None when nothing was ever appended; takes no lock."""
    row = session.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == HEAD_ID)
    ).one_or_none()
    return None if row is None else ChainHead(row.seq, row.hash)


def _lock_head(session: Session) -> ChainHead:
    """Lock the head row for this transaction, creating it at genesis on first use."""
    locked = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == HEAD_ID).with_for_update()
    row = session.execute(locked).one_or_none()
    if row is None:
        dialect = session.get_bind().dialect.name
        values = {"id": HEAD_ID, "seq": GENESIS.seq, "hash": GENESIS.hash}
        create: Any
        if dialect == "postgresql":
            create = postgresql.insert(AuditHead).values(values).on_conflict_do_nothing()
        elif dialect == "sqlite":
            create = sqlite.insert(AuditHead).values(values).on_conflict_do_nothing()
        else:
            raise AuditError(f"the audit chain does not support the {dialect} database")
        session.execute(create)
        row = session.execute(locked).one()
    return ChainHead(row.seq, row.hash)


def append(session: Session, records: Sequence[AuditRecord]) -> list[AuditEntry]:
    """Append ``records`` in order, in the caller's transaction; return their entries.

    The entries are committed or rolled back with the caller's transaction. Until then
    the head row stays locked, so other appenders wait: keep the transaction short.
    The returned AuditEntry objects are copies for reading; they are not in the session.
    On PostgreSQL the transaction must be READ COMMITTED (the default).
    """
    if not records:
        return []
    head = _lock_head(session)
    seq, prev = head.seq, head.hash
    rows: list[dict[str, Any]] = []
    for record in records:
        seq += 1
        at = format_at(record.at)
        digest = entry_hash(
            seq, at, record.kind, record.actor, record.subject, record.payload_json, prev
        )
        rows.append(
            {
                "seq": seq,
                "at": record.at.astimezone(UTC),
                "kind": record.kind,
                "actor": record.actor,
                "subject": record.subject,
                "payload": record.payload_json,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    session.execute(insert(_ENTRIES), rows)
    session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID).values(seq=seq, hash=prev))
    return [AuditEntry(**row) for row in rows]


# --- verification -------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyProblem:
    """The first thing wrong with the chain: where, what kind, and in words.

    ``code`` is one of ``hash_mismatch`` (the entry's fields do not give its hash: it was
    edited), ``link_mismatch`` (its prev_hash is not its predecessor's hash: an entry was
    inserted, replaced or re-hashed before it), ``missing`` (seq numbers skip: deleted),
    ``tail_missing`` (the head is beyond the last entry: the tail was cut), ``head_behind``
    (entries run past the head: the head was rewound, or an entry appended around it),
    ``head_mismatch`` (the head's hash is not its entry's hash), ``head_missing``.
    """

    seq: int
    code: str
    message: str


@dataclass(frozen=True)
class VerifyResult:
    """What a verification found: entries checked, the head, and the first problem if any."""

    count: int
    head: ChainHead | None
    problem: VerifyProblem | None

    @property
    def ok(self) -> bool:
        """True when the whole chain verified."""
        return self.problem is None


@contextlib.contextmanager
def _reading(source: Database | Session) -> Iterator[Session]:
    if isinstance(source, Session):
        yield source
    else:
        with source.transaction() as session:
            yield session


def _fetch(source: Database | Session, after: int, batch: int) -> Sequence[Row[Any]]:
    with _reading(source) as session:
        query = select(*ENTRY_COLUMNS).where(AuditEntry.seq > after).order_by(AuditEntry.seq)
        return session.execute(query.limit(batch)).all()


def _head(source: Database | Session) -> ChainHead | None:
    with _reading(source) as session:
        return read_head(session)


def _check_entry(row: Row[Any], expected_seq: int, prev: str) -> VerifyProblem | None:
    if row.seq != expected_seq:
        gap = f"{expected_seq}" if row.seq == expected_seq + 1 else f"{expected_seq}..{row.seq - 1}"
        return VerifyProblem(
            expected_seq, "missing", f"entries {gap} are missing (the next entry is {row.seq})"
        )
    if row.prev_hash != prev:
        return VerifyProblem(
            row.seq,
            "link_mismatch",
            f"entry {row.seq} links to {row.prev_hash[:16]}, but the entry before it "
            f"hashes to {prev[:16]}",
        )
    digest = entry_hash(
        row.seq, format_at(row.at), row.kind, row.actor, row.subject, row.payload, row.prev_hash
    )
    if digest != row.hash:
        return VerifyProblem(
            row.seq,
            "hash_mismatch",
            f"entry {row.seq} was changed: its fields hash to {digest[:16]}, "
            f"not to its stored hash {row.hash[:16]}",
        )
    return None


def _check_head(head: ChainHead | None, last: ChainHead) -> VerifyProblem | None:
    if head is None:
        if last.seq == 0:
            return None
        return VerifyProblem(
            last.seq, "head_missing", f"the head row is missing; entries run to {last.seq}"
        )
    if head.seq < last.seq:
        return VerifyProblem(
            head.seq + 1,
            "head_behind",
            f"the head is at {head.seq}, but entries run to {last.seq}: the head was rewound "
            "or entries were added around it",
        )
    if head.seq > last.seq:
        return VerifyProblem(
            last.seq + 1,
            "tail_missing",
            f"the head is at {head.seq}, but the last entry is {last.seq}: the tail was removed",
        )
    if head.hash != last.hash:
        return VerifyProblem(
            head.seq,
            "head_mismatch",
            f"the head's hash {head.hash[:16]} is not entry {head.seq}'s hash {last.hash[:16]}",
        )
    return None


def verify(source: Database | Session, *, batch: int = 5000) -> VerifyResult:
    """Check the whole chain in seq order, ``batch`` entries in memory at a time.

    Given a Database, each batch is read in a short transaction of its own, so appends
    go on meanwhile and are checked too; given a Session, everything is read in it.
    Returns the number of entries verified and the first problem found, if any.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    last = GENESIS
    count = 0
    while True:
        rows = _fetch(source, last.seq, batch)
        if not rows:
            # Entries and head are committed together and the head never moves back, so
            # a head read after the last batch is at or past every entry read so far.
            head = _head(source)
            if head is not None and head.seq > last.seq:
                rows = _fetch(source, last.seq, batch)  # appended while we read
            if not rows:
                return VerifyResult(count, head, _check_head(head, last))
        for row in rows:
            problem = _check_entry(row, last.seq + 1, last.hash)
            if problem is not None:
                return VerifyResult(count, _head(source), problem)
            last = ChainHead(row.seq, row.hash)
            count += 1
