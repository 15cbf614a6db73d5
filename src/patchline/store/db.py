"""Engines and sessions for SQLite and PostgreSQL, with the settings each needs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy.exc
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from patchline.errors import ConfigError
from patchline.store.buckets import register_sqlite

#: Execution option of a connection that only reads (see ``Database.reading``).
READ_ONLY = "patchline_read_only"


class Base(DeclarativeBase):
    """Base of every table."""


def default_url(home: Path) -> str:
    """The embedded default: a SQLite file in the data directory."""
    return f"sqlite:///{(home / 'patchline.db').absolute()}"


def is_sqlite(engine: Engine) -> bool:
    """True for the embedded SQLite backend."""
    return engine.dialect.name == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, full fsync and a busy timeout.

    SQLite transactions that write start with BEGIN IMMEDIATE, so concurrent writers
    queue instead of failing mid-transaction; those of ``Database.reading`` start with a
    plain BEGIN, which takes no write lock (WAL readers neither wait for nor hold up the
    writer).
    """
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"database URL {url!r} is not valid: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            register_sqlite(dbapi_connection)

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, **kwargs)
    raise ConfigError(
        f"database {parsed.get_backend_name()!r} is not supported",
        hint="use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB",
    )


#: What SQLAlchemy raises when the database cannot be reached or no connection is free:
#: the caller answers "unavailable, try again" (503), not a server error.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
)


class Database:
    """An engine and its session factory."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def connect(cls, url: str) -> Database:
        """Open the database at ``url`` (does not create or migrate tables)."""
        return cls(make_engine(url))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction, committed at the end, rolled back on error."""
        with self.sessions.begin() as session:
            yield session

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection in one transaction that only reads, rolled back at the end. On
        SQLite it takes no write lock, so a poll neither waits for the writer nor holds it
        up; writing through it is an error of the caller (SQLite may refuse it)."""
        with self.engine.connect() as conn:
            conn.execution_options(**{READ_ONLY: True})
            try:
                yield conn
            finally:
                conn.rollback()

    @contextlib.contextmanager
    def reading_session(self) -> Iterator[Session]:
        """An ORM session over ``reading()``: one transaction that only reads."""
        with self.reading() as conn, Session(bind=conn, expire_on_commit=False) as session:
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
