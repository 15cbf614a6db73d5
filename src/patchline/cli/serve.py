"""``patchline serve``, ``patchline director init`` and ``patchline token``."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click
import uvicorn
from rich.table import Table

from patchline.cli.context import CliContext, cli_actor, pass_cli
from patchline.clock import SystemClock
from patchline.director.identity import create_director, director_root_path
from patchline.server.app import create_app
from patchline.server.auth import Role, create_token, list_tokens, revoke_token
from patchline.store.db import Database
from patchline.store.migrate import upgrade


@click.command()
@click.option("--host", default=None, help="The address to bind (default: PATCHLINE_HOST).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="The port (default: PATCHLINE_PORT).",
)
@click.option("--log-level", default="warning", show_default=True)
@click.option(
    "--server",
    "asgi_server",
    type=click.Choice(["granian", "uvicorn"]),
    default="granian",
    show_default=True,
    help="The ASGI server (see bench/RESULTS.md for how they compare).",
)
@pass_cli
def serve(
    cli: CliContext, host: str | None, port: int | None, log_level: str, asgi_server: str
) -> None:
    """Run the update server (device API, management API, repository files)."""
    given = {"host": host, "port": port}
    settings = cli.settings.replace(
        home=cli.home.absolute(), **{k: v for k, v in given.items() if v is not None}
    )
    host, port = settings.host, settings.port
    cli.console.print(f"Patchline server on http://{host}:{port} (docs at /docs)")
    if asgi_server == "granian":
        # The worker processes build the same settings from this environment.
        env = {**os.environ, "PATCHLINE_HOME": str(settings.home), "PATCHLINE_HOST": host}
        env["PATCHLINE_PORT"] = str(port)
        granian = shutil.which("granian") or str(Path(sys.executable).parent / "granian")
        os.execve(  # noqa: S606 - replaces this process with the chosen server
            granian,
            [
                granian,
                "--interface",
                "asgi",
                "--factory",
                "--host",
                host,
                "--port",
                str(port),
                "--log-level",
                log_level,
                "--no-access-log",
                "patchline.server.entry:app_from_env",
            ],
            env,
        )
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, access_log=False)


@click.group()
def director() -> None:
    """The director's keys: the trust root of per-device decisions."""


@director.command("init")
@pass_cli
def director_init(cli: CliContext) -> None:
    """Create the director's keys and root (devices ship with it)."""
    create_director(cli.open_repository())
    cli.console.print(f"Director root written to {director_root_path(cli.home)}.")


@click.group()
def token() -> None:
    """Management API tokens."""


def _database(cli: CliContext) -> Database:
    db = Database.connect(cli.settings.server_database_url())
    upgrade(db)
    return db


@token.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@pass_cli
def token_create(cli: CliContext, name: str, role: str) -> None:
    """Create a token NAME with ROLE; it is printed once."""
    db = _database(cli)
    with db.transaction() as session:
        value = create_token(session, name, Role(role), SystemClock().now())
    db.dispose()
    click.echo(value)


@token.command("list")
@pass_cli
def token_list(cli: CliContext) -> None:
    """List tokens: name, role, created, revoked (never the secret)."""
    db = _database(cli)
    with db.transaction() as session:
        tokens = list_tokens(session)
    db.dispose()
    table = Table()
    for column in ("name", "role", "created", "revoked"):
        table.add_column(column)
    for item in tokens:
        revoked = item.revoked_at.isoformat(timespec="seconds") if item.revoked_at else "-"
        table.add_row(item.name, item.role, item.created_at.isoformat(timespec="seconds"), revoked)
    cli.console.print(table)


@token.command("revoke")
@click.argument("name")
@click.option("--reason", default="", help="Why (kept in the audit chain).")
@pass_cli
def token_revoke(cli: CliContext, name: str, reason: str) -> None:
    """Revoke token NAME: every server process refuses it from now on."""
    db = _database(cli)
    with db.transaction() as session:
        revoke_token(session, name, SystemClock().now(), cli_actor(), reason)
    db.dispose()
    cli.console.print(f"Revoked {name}.")
