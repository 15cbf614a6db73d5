"""Two processes syncing the same signed targets at once, on PostgreSQL: the second one
waits for the first, then finds nothing left to do; no error, one row and one audit
entry per target."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select, text

from patchline.audit import verify
from patchline.director.releases_sync import sync_releases
from patchline.repository import Repository
from patchline.repository.restrict import restrict_releases
from patchline.repository.state import RepositoryState
from patchline.store.db import Base, Database
from patchline.store.models import AuditEntry, Release
from tests.agent.test_install import publish_delta, publish_shared
from tests.conftest import publish

NOW = datetime(2018, 4, 15, tzinfo=UTC)


@pytest.fixture
def pg(postgres_server_url: str) -> Iterator[Database]:
    db = Database.connect(postgres_server_url)
    with db.engine.begin() as conn:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield db
    db.dispose()


def wait_until_a_session_waits_on_a_lock(db: Database) -> None:
    """Return once another session of this database is blocked on a lock."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with db.engine.connect() as conn:
            if conn.scalar(query):
                return
        time.sleep(0.02)
    raise AssertionError("the second sync never waited for the first")


def sync_while_another_is_open(db: Database, state: RepositoryState) -> tuple[list[str], Any]:
    """Sync in one transaction, and, before it commits, sync again from another thread
    (its own session); return what each returned (the second: a list or an exception)."""
    second: list[Any] = []

    def other() -> None:
        try:
            with db.transaction() as session:
                second.append(sync_releases(session, state, NOW))
        except Exception as exc:
            second.append(exc)

    with db.sessions() as session:
        session.begin()
        first = sync_releases(session, state, NOW)
        thread = threading.Thread(target=other)
        thread.start()
        wait_until_a_session_waits_on_a_lock(db)
        session.commit()
    thread.join(timeout=30)
    return first, second[0]


def audit_kinds(db: Database, kind: str) -> list[str]:
    with db.transaction() as session:
        return list(session.scalars(select(AuditEntry.subject).where(AuditEntry.kind == kind)))


def test_a_second_sync_of_the_same_new_targets_adds_nothing_and_does_not_fail(
    repo: Repository, pg: Database
) -> None:
    publish(repo, "alpha", "1.0")
    publish_shared(repo)
    publish_delta(repo, "1.0", "2.0")
    publish(repo, "beta", "1.0")
    first, second = sync_while_another_is_open(pg, repo.state())
    assert len(first) == 4
    assert second == []
    with pg.transaction() as session:
        paths = list(session.scalars(select(Release.target_path)))
        counted = session.execute(select(Release.kind, func.count()).group_by(Release.kind))
        kinds = dict(counted.tuples().all())
    assert sorted(paths) == sorted(first)
    assert kinds == {"full": 3, "delta": 1}
    assert sorted(audit_kinds(pg, "release")) == sorted(first)
    assert verify(pg).ok


def test_a_re_signed_eligibility_synced_twice_at_once_is_changed_and_audited_once(
    repo: Repository, pg: Database
) -> None:
    publish(repo, "alpha", "1.0")
    with pg.transaction() as session:
        synced = sync_releases(session, repo.state(), NOW)
    restrict_releases(repo, lambda info: replace(info.eligibility, valid_until=date(2018, 4, 15)))
    first, second = sync_while_another_is_open(pg, repo.state())
    assert first == synced
    assert second == []
    assert audit_kinds(pg, "release-eligibility") == synced
    with pg.transaction() as session:
        eligibility = session.scalar(select(Release.eligibility))
    assert eligibility is not None
    assert eligibility["valid_until"] == "2018-04-15"
    assert verify(pg).ok
