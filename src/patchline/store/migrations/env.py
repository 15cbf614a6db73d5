"""Alembic environment: runs on the connection handed in by ``patchline.store.migrate``."""

from __future__ import annotations

from alembic import context

from patchline.store import models  # noqa: F401  (registers the tables)
from patchline.store.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through patchline.store.migrate.upgrade()")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
