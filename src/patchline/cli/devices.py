"""``patchline device decommission``."""

from __future__ import annotations

import click

from patchline.cli.context import CliContext, cli_actor, pass_cli
from patchline.cli.database import database_option, open_database
from patchline.clock import SystemClock
from patchline.errors import UsageError
from patchline.fleet.decommission import decommission


@click.group()
def device() -> None:
    """Enrolled devices."""


@device.command("decommission")
@click.argument("device_id")
@click.option("--reason", required=True, help="Why (kept in the audit chain).")
@database_option
@pass_cli
def decommission_command(
    cli: CliContext, device_id: str, reason: str, database_url: str | None
) -> None:
    """Take device DEVICE_ID out of service: its credential stops working on every server
    process, it is offered nothing and cannot enroll again; its records stay."""
    with (
        open_database(cli, database_url, "decommission the device", UsageError) as db,
        db.transaction() as session,
    ):
        row = decommission(session, device_id, reason, cli_actor(), SystemClock().now())
        shown = f"{row.model} serial {row.serial}"
    cli.console.print(f"Decommissioned {device_id} ({shown}).")
