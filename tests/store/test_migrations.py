from sqlalchemy import inspect

from patchline.store.db import Base, Database
from patchline.store.migrate import upgrade


def test_migrations_create_every_table_and_are_idempotent(database_url: str) -> None:
    db = Database.connect(database_url)
    upgrade(db)  # a second run is a no-op
    names = set(inspect(db.engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= names
    assert "alembic_version" in names
    db.dispose()
