"""Bringing a database to the newest schema, safely with several servers starting at once."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from patchline.store.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"
#: Any fixed number: PostgreSQL advisory lock held while migrating.
_MIGRATION_LOCK = 0x50415443


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at Patchline's migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(db: Database) -> None:
    """Apply every pending migration; concurrent callers on PostgreSQL take turns."""
    with db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
            connection.commit()
        try:
            command.upgrade(alembic_config(connection), "head")
            connection.commit()
        finally:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
                connection.commit()


def is_migrated(db: Database) -> bool:
    """True when ``db``'s schema is at the newest migration; reads only, creates nothing."""
    with db.engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    return current == set(ScriptDirectory.from_config(alembic_config()).get_heads())
