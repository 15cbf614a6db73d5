"""The server's releases table follows the repository, including releases re-signed
narrower after they were first synced."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from sqlalchemy import select

from patchline.audit import verify
from patchline.director.releases_sync import sync_releases
from patchline.repository import Repository
from patchline.repository.restrict import restrict_releases
from patchline.store.db import Database
from patchline.store.models import AuditEntry, Release
from tests.conftest import publish

NOW = datetime(2018, 4, 15, tzinfo=UTC)


def test_a_release_re_signed_narrower_updates_its_row_and_is_audited(
    repo: Repository, database_url: str
) -> None:
    db = Database.connect(database_url)
    try:
        publish(repo, "alpha", "1.0")
        with db.transaction() as session:
            first = sync_releases(session, repo.state(), NOW)
        assert len(first) == 1
        with db.transaction() as session:
            assert sync_releases(session, repo.state(), NOW) == []

        restrict_releases(
            repo, lambda info: replace(info.eligibility, valid_until=date(2018, 4, 15))
        )
        with db.transaction() as session:
            assert sync_releases(session, repo.state(), NOW) == first

        with db.transaction() as session:
            row = session.scalars(select(Release).where(Release.target_path == first[0])).one()
            assert row.eligibility is not None
            assert row.eligibility["valid_until"] == "2018-04-15"
            kinds = list(session.scalars(select(AuditEntry.kind).order_by(AuditEntry.seq)))
        assert kinds == ["release", "release-eligibility"]
        assert verify(db).ok
    finally:
        db.dispose()
