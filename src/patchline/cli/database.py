"""The server's database, as the command line reaches it (``--database-url``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from patchline.cli.context import CliContext
from patchline.errors import PatchlineError
from patchline.store.db import Database, default_url

database_option = click.option(
    "--database-url",
    envvar="PATCHLINE_DATABASE_URL",
    default=None,
    help="The database (or set PATCHLINE_DATABASE_URL); default: patchline.db in --home.",
)


@contextlib.contextmanager
def open_database(
    cli: CliContext, url: str | None, doing: str, error: Callable[..., PatchlineError]
) -> Iterator[Database]:
    """The database at ``url`` (default: the home's SQLite file); a database failure
    inside the block becomes ``error`` saying what could not be done (``doing``), with
    the password hidden."""
    url = url or default_url(cli.home)
    db = Database.connect(url)
    try:
        yield db
    except SQLAlchemyError as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        raise error(
            f"cannot {doing} in {shown}: {type(exc).__name__}: {exc.args[0]}",
            hint="check --database-url (or PATCHLINE_DATABASE_URL) and that it is migrated",
        ) from None
    finally:
        db.dispose()
