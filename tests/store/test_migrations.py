from datetime import UTC, date, datetime

from alembic import command
from sqlalchemy import inspect, select, text

from patchline.store.db import Base, Database
from patchline.store.migrate import alembic_config, upgrade
from patchline.store.models import PolicyAmendment


def test_migrations_create_every_table_and_are_idempotent(database_url: str) -> None:
    db = Database.connect(database_url)
    upgrade(db)  # a second run is a no-op
    names = set(inspect(db.engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= names
    assert "alembic_version" in names
    db.dispose()


def test_existing_amendments_are_taken_as_recorded_when_created(database_url: str) -> None:
    db = Database.connect(database_url)
    try:
        with db.engine.connect() as connection:
            command.downgrade(alembic_config(connection), "0001")
            connection.commit()
        created = datetime(2018, 7, 25, 9, 30, tzinfo=UTC)
        with db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO policies (id, title, body, created_at, created_by) "
                    "VALUES ('L', '', '{}', :at, 'test')"
                ),
                {"at": created},
            )
            for effective in (date(2018, 7, 20), date(2018, 7, 25)):
                connection.execute(
                    text(
                        "INSERT INTO policy_amendments (policy_id, effective_from, changes, "
                        "note, created_at, created_by) VALUES ('L', :day, '{}', '', :at, 'test')"
                    ),
                    {"day": effective, "at": created},
                )
        upgrade(db)
        with db.transaction() as session:
            rows = list(session.scalars(select(PolicyAmendment).order_by(PolicyAmendment.id)))
            # SQLite hands back naive UTC stamps, PostgreSQL aware ones.
            stamps = [r.recorded_at.replace(tzinfo=r.recorded_at.tzinfo or UTC) for r in rows]
            assert stamps == [created, created]
            assert [r.backdated for r in rows] == [True, False]
            assert rows[0].reason == "recorded before back-dated amendments needed a reason"
            assert rows[1].reason == ""
    finally:
        db.dispose()
