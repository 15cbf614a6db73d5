"""Several OS processes appending at once to one database still make one chain."""

from __future__ import annotations

import itertools
import multiprocessing
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from patchline.store.db import Database
from patchline.store.models import AuditEntry

PROCESSES = 4
TRANSACTIONS = 15
BATCH = 20


def _appender(url: str, worker: int, start: Any) -> None:
    """Append TRANSACTIONS batches of BATCH records, starting when every worker is ready."""
    from patchline.audit import AuditRecord, append

    db = Database.connect(url)
    start.wait(timeout=60)
    for txn in range(TRANSACTIONS):
        batch = [
            AuditRecord(
                datetime.now(UTC),
                "decision",
                f"server-{worker}",
                f"w{worker}-t{txn}-r{i}",
                {"worker": worker, "txn": txn, "i": i},
            )
            for i in range(BATCH)
        ]
        with db.transaction() as session:
            append(session, batch)
    db.dispose()


def test_processes_appending_at_once_keep_one_unbroken_chain(database_url: str) -> None:
    from patchline.audit import verify

    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(PROCESSES)
    workers = [
        ctx.Process(target=_appender, args=(database_url, w, start)) for w in range(PROCESSES)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
    assert [p.exitcode for p in workers] == [0] * PROCESSES

    db = Database.connect(database_url)
    result = verify(db)
    assert result.ok, result.problem
    assert result.count == PROCESSES * TRANSACTIONS * BATCH
    with db.transaction() as session:
        rows = session.execute(
            select(AuditEntry.actor, AuditEntry.subject).order_by(AuditEntry.seq)
        ).all()
    db.dispose()
    assert Counter(subject for _, subject in rows).most_common(1)[0][1] == 1
    # Each transaction's batch is contiguous: nobody wrote in the middle of another's.
    subjects = [subject for _, subject in rows]
    for w in range(PROCESSES):
        for t in range(TRANSACTIONS):
            first = subjects.index(f"w{w}-t{t}-r0")
            assert subjects[first : first + BATCH] == [f"w{w}-t{t}-r{i}" for i in range(BATCH)]
    if database_url.startswith("postgresql"):
        # The workers really interleaved: PostgreSQL queues row-lock waiters in order.
        # (SQLite's busy handler sleeps, so one writer may finish before others wake.)
        actors = [actor for actor, _ in rows]
        switches = sum(a != b for a, b in itertools.pairwise(actors))
        assert switches > PROCESSES
