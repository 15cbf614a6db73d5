"""``patchline device decommission`` and ``patchline device enroll-ddi``."""

from __future__ import annotations

from datetime import datetime

import click

from patchline.cli.context import CliContext, cli_actor, pass_cli
from patchline.cli.database import database_option, open_database
from patchline.clock import SystemClock
from patchline.errors import UsageError
from patchline.fleet.ddi_controllers import ControllerFacts, enroll_controller
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


@device.command("enroll-ddi")
@click.argument("controller_id")
@click.option("--model", required=True, help="The device's model.")
@click.option("--serial", required=True, help="Its serial number.")
@click.option("--region", required=True, help="Its region, vouched for (e.g. DE).")
@click.option("--deployed-on", required=True, type=click.DateTime(["%Y-%m-%d"]), help="YYYY-MM-DD.")
@click.option("--build", required=True, help="The build it runs now.")
@click.option(
    "--security-patch-level",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="The patch level of that build (YYYY-MM-DD).",
)
@click.option("--hardware-id", default="", help="Its hardware id (default: the controllerId).")
@click.option("--carrier", default="", help="Its carrier, if any.")
@click.option(
    "--token",
    envvar="PATCHLINE_DDI_TARGET_TOKEN",
    default=None,
    help="The target token it already has (or set PATCHLINE_DDI_TARGET_TOKEN); "
    "default: a new one, printed once.",
)
@database_option
@pass_cli
def enroll_ddi_command(
    cli: CliContext,
    controller_id: str,
    model: str,
    serial: str,
    region: str,
    deployed_on: datetime,
    build: str,
    security_patch_level: datetime,
    hardware_id: str,
    carrier: str,
    token: str | None,
    database_url: str | None,
) -> None:
    """Enroll a device that speaks hawkBit's DDI API (SWUpdate, RAUC) as CONTROLLER_ID,
    its hawkBit controllerId, with the facts decisions use; prints its target token
    when a new one was made. Enrolling an enrolled controller again replaces its token."""
    facts = ControllerFacts(
        model=model,
        serial=serial,
        region=region.upper(),
        deployed_on=deployed_on.date(),
        build=build,
        security_patch_level=security_patch_level.date(),
        hardware_id=hardware_id,
        carrier=carrier,
    )
    with (
        open_database(cli, database_url, "enroll the controller", UsageError) as db,
        db.transaction() as session,
    ):
        result = enroll_controller(
            session, controller_id, facts, SystemClock().now(), cli_actor(), token
        )
    if token is None:
        click.echo(result.target_token)
    else:
        again = " again" if result.re_enrolled else ""
        cli.console.print(f"Enrolled controller {controller_id}{again}.")
