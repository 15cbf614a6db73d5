"""The server's database, as the command line reaches it (``--database-url``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from patchline.cli.context import CliContext
from patchline.errors import PatchlineError
from patchline.store.db import Database
from patchline.store.migrate import is_migrated

database_option = click.option(
    "--database-url",
    default=None,
    help="The database (or set PATCHLINE_DATABASE_URL); default: patchline.db in --home.",
)

HINT = "start `patchline serve` once (it creates and migrates it), or set PATCHLINE_DATABASE_URL"


@contextlib.contextmanager
def open_database(
    cli: CliContext, url: str | None, doing: str, error: Callable[..., PatchlineError]
) -> Iterator[Database]:
    """The server's database at ``url`` (default: the home's SQLite file), existing and
    migrated; else ``error`` saying so, and nothing is created. A database failure inside
    the block becomes ``error`` saying what could not be done (``doing``), with the
    password hidden."""
    url = url or cli.settings.server_database_url()
    shown = make_url(url).render_as_string(hide_password=True)
    _require_sqlite_file(url, shown, error)
    db = Database.connect(url)
    try:
        _require_migrated(db, shown, error)
        yield db
    except SQLAlchemyError as exc:
        raise error(
            f"cannot {doing} in {shown}: {type(exc).__name__}: {exc.args[0]}",
            hint="check --database-url (or PATCHLINE_DATABASE_URL) and that it is migrated",
        ) from None
    finally:
        db.dispose()


def _require_migrated(db: Database, shown: str, error: Callable[..., PatchlineError]) -> None:
    try:
        migrated = is_migrated(db)
    except SQLAlchemyError as exc:
        raise error(
            f"cannot reach the server database at {shown}: {type(exc).__name__}: {exc.args[0]}",
            hint=HINT,
        ) from None
    if not migrated:
        raise error(f"the server database at {shown} is not set up (not migrated)", hint=HINT)


def _require_sqlite_file(url: str, shown: str, error: Callable[..., PatchlineError]) -> None:
    """Refuse a SQLite URL whose file does not exist or is empty: connecting would
    create or write it."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    database = parsed.database or ""
    if database in ("", ":memory:") or not Path(database).is_file():
        raise error(f"no server database at {shown}", hint=HINT)
    if Path(database).stat().st_size == 0:  # opening it would write to it
        raise error(f"the server database at {shown} is not set up (not migrated)", hint=HINT)
