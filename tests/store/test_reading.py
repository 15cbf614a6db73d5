"""Reads that poll (device loads, the catalog watch, the brakes, an idle outbox) take no
write lock on SQLite, so they neither wait for the writer nor hold it up."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, text

from patchline.fleet.rollouts import due
from patchline.store.db import Database, default_url
from patchline.store.migrate import upgrade
from patchline.store.models import CatalogVersion
from patchline.webhooks.deliver import DeliveryPolicy, claim_due


def _sqlite(tmp_path: Path) -> Database:
    db = Database.connect(default_url(tmp_path))
    upgrade(db)
    return db


def test_reads_go_on_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    db = _sqlite(tmp_path)
    other = Database.connect(default_url(tmp_path))
    now = datetime.now(UTC)
    try:
        with other.transaction() as writing:  # BEGIN IMMEDIATE: the write lock is held
            writing.execute(text("SELECT 1"))
            started = time.monotonic()
            with db.reading() as conn:
                conn.execute(select(CatalogVersion.version)).all()
            with db.reading_session() as session:
                assert due(session, now) == []
            assert claim_due(db, now, DeliveryPolicy()) == []
            assert time.monotonic() - started < 5  # a write lock would wait 30 s
    finally:
        other.dispose()
        db.dispose()
