"""``patchline proposal``: changes held for a second person (the two-person rule), on the
server's database; the person running the command is named as ``cli:USER``."""

from __future__ import annotations

import click
from rich.table import Table

from patchline.approvals import service
from patchline.approvals.appliers import APPLIERS
from patchline.cli.context import CliContext, cli_actor, pass_cli
from patchline.cli.database import database_option, open_database
from patchline.cli.output import json_option, print_json
from patchline.clock import SystemClock
from patchline.errors import ApprovalError


@click.group()
def proposal() -> None:
    """Changes waiting for a second person's approval."""


@proposal.command("list")
@click.option(
    "--state",
    type=click.Choice(["pending", "approved", "rejected"]),
    default=None,
    help="Only these.",
)
@database_option
@json_option
@pass_cli
def list_command(
    cli: CliContext, state: str | None, database_url: str | None, as_json: bool
) -> None:
    """List proposals, newest first."""
    with (
        open_database(cli, database_url, "list proposals", ApprovalError) as db,
        db.transaction() as session,
    ):
        shown = [service.proposal_json(p) for p in service.list_proposals(session, state)]
    if as_json:
        print_json({"proposals": shown})
        return
    table = Table()
    for column in ("id", "action", "state", "summary", "proposed by", "decided by"):
        table.add_column(column)
    for p in shown:
        table.add_row(
            str(p["id"]),
            p["action"],
            p["state"],
            p["summary"],
            p["proposed_by"],
            p["decided_by"] or "-",
        )
    cli.console.print(table)


@proposal.command("approve")
@click.argument("proposal_id", type=click.IntRange(1, 2**31 - 1))
@database_option
@pass_cli
def approve_command(cli: CliContext, proposal_id: int, database_url: str | None) -> None:
    """Apply proposal PROPOSAL_ID as a second person (not its proposer)."""
    with (
        open_database(cli, database_url, "approve the proposal", ApprovalError) as db,
        db.transaction() as session,
    ):
        row = service.approve(session, proposal_id, cli_actor(), SystemClock().now(), APPLIERS)
        summary = row.summary
    cli.console.print(f"Approved and applied proposal {proposal_id}: {summary}.")


@proposal.command("reject")
@click.argument("proposal_id", type=click.IntRange(1, 2**31 - 1))
@click.option("--reason", default="", help="Why (kept in the audit chain).")
@database_option
@pass_cli
def reject_command(
    cli: CliContext, proposal_id: int, reason: str, database_url: str | None
) -> None:
    """Close proposal PROPOSAL_ID without applying it."""
    with (
        open_database(cli, database_url, "reject the proposal", ApprovalError) as db,
        db.transaction() as session,
    ):
        service.reject(session, proposal_id, cli_actor(), reason, SystemClock().now())
    cli.console.print(f"Rejected proposal {proposal_id}.")
