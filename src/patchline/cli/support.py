"""``patchline support set|list``: the security support each model's maker promised."""

from __future__ import annotations

from datetime import datetime, timedelta

import click

from patchline.cli.context import CliContext, cli_actor, pass_cli
from patchline.cli.database import database_option, open_database
from patchline.clock import SystemClock
from patchline.errors import UsageError
from patchline.fleet.support import set_promise, support_by_model


@click.group()
def support() -> None:
    """Security support promised per model, and the devices past it."""


@support.command("set")
@click.argument("model")
@click.option(
    "--until",
    "until",
    type=click.DateTime(["%Y-%m-%d"]),
    required=True,
    help="The last day security updates are promised, YYYY-MM-DD.",
)
@click.option("--note", default="", help="E.g. 'five years after launch (EU CRA)'.")
@database_option
@pass_cli
def set_command(
    cli: CliContext, model: str, until: datetime, note: str, database_url: str | None
) -> None:
    """Record that MODEL gets security updates until a date (replacing an earlier promise);
    kept in the audit chain."""
    with (
        open_database(cli, database_url, "set the support promise", UsageError) as db,
        db.transaction() as session,
    ):
        set_promise(session, model, until.date(), note, cli_actor(), SystemClock().now())
    cli.console.print(f"{model}: security updates promised until {until.date().isoformat()}.")


@support.command("list")
@click.option("--older-than-days", type=click.IntRange(0, 36500), default=90, show_default=True)
@database_option
@pass_cli
def list_command(cli: CliContext, older_than_days: int, database_url: str | None) -> None:
    """Per model: the promise, devices past it, devices on a patch older than the age, and
    how many of each checked in within a week."""
    now = SystemClock().now()
    today = now.date()
    with (
        open_database(cli, database_url, "read support promises", UsageError) as db,
        db.transaction() as session,
    ):
        rows = support_by_model(
            session, today, today - timedelta(days=older_than_days), now - timedelta(days=7)
        )
    if not rows:
        cli.console.print("No model has devices or a promise yet.")
    for r in rows:
        until = r.security_until.isoformat() if r.security_until else "not set"
        cli.console.print(
            f"{r.model}: until {until}; {r.devices} devices, {r.past_support} past support "
            f"({r.past_support_reachable} reachable), {r.stale_patch} on a patch older than "
            f"{older_than_days} days ({r.stale_patch_reachable} reachable)"
        )
