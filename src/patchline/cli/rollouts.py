"""``patchline rollout create|list|show|pause|resume|abort|advance``: staged rollouts in
the server's database (every server process picks a change up within a second)."""

from __future__ import annotations

from datetime import date
from typing import Any

import click
from rich.table import Table
from sqlalchemy.orm import Session

from patchline.actions import Action
from patchline.approvals.appliers import rollout_start_payload, rollout_widen_payload
from patchline.approvals.gate import hold
from patchline.cli.context import CliContext, cli_actor, pass_cli
from patchline.cli.database import database_option, open_database
from patchline.cli.output import iso_utc, json_option, print_json
from patchline.clock import SystemClock
from patchline.director.catalog import aware
from patchline.director.rollout_gate import BUCKETS, Selection, percent
from patchline.errors import UsageError
from patchline.fleet import rollouts
from patchline.store.models import Proposal, Rollout


@click.group()
def rollout() -> None:
    """Send a release to the fleet in phases that halt themselves when it goes wrong."""


def _dates(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{value!r} is not a date written YYYY-MM-DD") from None


def _percents(text: str) -> list[int]:
    try:
        values = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise UsageError(f"--phases {text!r}: give percentages like 0.1,1,10,50,100") from None
    if any(not 0 < v <= 100 for v in values):
        raise UsageError(f"--phases {text!r}: every share must be above 0 and at most 100")
    return [max(1, round(v * BUCKETS / 100)) for v in values]


@rollout.command("create")
@click.argument("model")
@click.argument("build")
@click.option("--phases", default="0.1,1,10,50,100", show_default=True, help="Percentages.")
@click.option("--soak-hours", default=24.0, show_default=True, help="Per phase, at least.")
@click.option("--min-healthy", default=1, show_default=True, help="Healthy boots to move on.")
@click.option("--region", "regions", multiple=True, help="Only devices in these regions.")
@click.option("--carrier", "carriers", multiple=True, help="Only devices of these carriers.")
@click.option("--group", "groups", multiple=True, help="Only devices in these device groups.")
@click.option("--from-build", "builds", multiple=True, help="Only devices running these builds.")
@click.option("--patch-level-from", metavar="YYYY-MM-DD")
@click.option("--patch-level-to", metavar="YYYY-MM-DD")
@click.option("--deployed-from", metavar="YYYY-MM-DD")
@click.option("--deployed-to", metavar="YYYY-MM-DD")
@click.option("--device", "device_ids", multiple=True, help="Only these device ids.")
@click.option(
    "--stepping-stone", metavar="BUILD", help="Devices on older builds install BUILD first."
)
@click.option("--max-failure-rate", default=0.05, show_default=True)
@click.option("--max-rollback-rate", default=0.05, show_default=True)
@click.option("--max-silence-rate", default=0.05, show_default=True)
@click.option("--silence-hours", default=24.0, show_default=True, help="Quiet this long: silent.")
@click.option("--min-installs", default=20, show_default=True, help="Brakes look from here on.")
@json_option
@database_option
@pass_cli
def create_command(
    cli: CliContext,
    model: str,
    build: str,
    phases: str,
    soak_hours: float,
    min_healthy: int,
    regions: tuple[str, ...],
    carriers: tuple[str, ...],
    groups: tuple[str, ...],
    builds: tuple[str, ...],
    patch_level_from: str | None,
    patch_level_to: str | None,
    deployed_from: str | None,
    deployed_to: str | None,
    device_ids: tuple[str, ...],
    stepping_stone: str | None,
    max_failure_rate: float,
    max_rollback_rate: float,
    max_silence_rate: float,
    silence_hours: float,
    min_installs: int,
    as_json: bool,
    database_url: str | None,
) -> None:
    """Start a rollout of build BUILD of MODEL in its first phase."""
    spec = rollouts.RolloutSpec(
        model=model,
        build=build,
        phases=tuple(
            rollouts.Phase(share, round(soak_hours * 3600), min_healthy)
            for share in _percents(phases)
        ),
        selection=Selection(
            regions=regions,
            carriers=carriers,
            builds=builds,
            patch_level_from=_dates(patch_level_from),
            patch_level_to=_dates(patch_level_to),
            deployed_from=_dates(deployed_from),
            deployed_to=_dates(deployed_to),
            groups=groups,
            device_ids=frozenset(device_ids),
        ),
        brakes=rollouts.Brakes(
            max_failure_rate=max_failure_rate,
            max_rollback_rate=max_rollback_rate,
            max_silence_rate=max_silence_rate,
            silence_seconds=round(silence_hours * 3600),
            min_installs=min_installs,
        ),
        stepping_stone=stepping_stone,
    )
    now = SystemClock().now()
    with (
        open_database(cli, database_url, "start the rollout", UsageError) as db,
        db.transaction() as session,
    ):
        proposal = hold(
            session,
            cli.settings.second_person_actions(),
            Action.ROLLOUT_START,
            rollout_start_payload(spec),
            f"start a rollout of {spec.model} {spec.build}",
            cli_actor(),
            now,
        )
        if proposal is None:
            document = _json(session, rollouts.create_rollout(session, spec, cli_actor(), now))
        else:
            document = _held(proposal)
    _print_or_held(cli, document, as_json)


@rollout.command("list")
@json_option
@database_option
@pass_cli
def list_command(cli: CliContext, as_json: bool, database_url: str | None) -> None:
    """List rollouts, newest first."""
    with (
        open_database(cli, database_url, "list rollouts", UsageError) as db,
        db.transaction() as session,
    ):
        rows = [_json(session, r, with_history=False) for r in rollouts.list_rollouts(session)]
    if as_json:
        print_json({"rollouts": rows})
        return
    table = Table()
    for column in ("id", "release", "state", "phase", "updated", "reason"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["id"], f"{r['model']} {r['build']}", r["state"], r["where"], r["updated_at"],
            r["reason"],
        )  # fmt: skip
    cli.console.print(table)


@rollout.command("show")
@click.argument("rollout_id")
@json_option
@database_option
@pass_cli
def show_command(cli: CliContext, rollout_id: str, as_json: bool, database_url: str | None) -> None:
    """Show a rollout: its phases, brakes, the cohort's figures now, and its history."""
    with (
        open_database(cli, database_url, "read the rollout", UsageError) as db,
        db.transaction() as session,
    ):
        document = _json(session, rollouts.get_rollout(session, rollout_id))
    _print(cli, document, as_json)


def _action(name: str, doc: str) -> click.Command:
    @click.argument("rollout_id")
    @click.option("--reason", default="", help="Why (kept in the audit chain).")
    @json_option
    @database_option
    @pass_cli
    def command(
        cli: CliContext, rollout_id: str, reason: str, as_json: bool, database_url: str | None
    ) -> None:
        now = SystemClock().now()
        with (
            open_database(cli, database_url, f"{name} the rollout", UsageError) as db,
            db.transaction() as session,
        ):
            proposal = (
                hold(
                    session,
                    cli.settings.second_person_actions(),
                    Action.ROLLOUT_WIDEN,
                    rollout_widen_payload(rollout_id, reason),
                    f"widen rollout {rollout_id} to its next phase",
                    cli_actor(),
                    now,
                )
                if name == "advance"
                else None
            )
            if proposal is None:
                row = rollouts.act(session, rollout_id, name, cli_actor(), reason, now)
                document = _json(session, row)
            else:
                document = _held(proposal)
        _print_or_held(cli, document, as_json)

    command.__doc__ = doc
    return rollout.command(name)(command)


_action("pause", "Pause ROLLOUT_ID: no new device is offered its build until resumed.")
_action("resume", "Resume ROLLOUT_ID after a pause or a halt by its brakes.")
_action("abort", "Abort ROLLOUT_ID for good: no new device is offered its build.")
_action("advance", "Move ROLLOUT_ID to its next phase now (past the last: completed).")


def _held(proposal: Proposal) -> dict[str, Any]:
    return {"proposal": proposal.id, "action": proposal.action, "state": proposal.state}


def _print_or_held(cli: CliContext, document: dict[str, Any], as_json: bool) -> None:
    """A rollout as ``_print`` shows it, or the proposal that holds the change."""
    if "proposal" not in document:
        _print(cli, document, as_json)
    elif as_json:
        print_json(document)
    else:
        cli.console.print(
            f"Held for a second person: proposal {document['proposal']} "
            f"({document['action']}); another person approves it with "
            f"`patchline proposal approve {document['proposal']}`."
        )


def _json(session: Session, row: Rollout, *, with_history: bool = True) -> dict[str, Any]:
    now = SystemClock().now()
    phases = rollouts.phases_of(row)
    document: dict[str, Any] = {
        "id": row.id,
        "model": row.model,
        "build": row.build,
        "target_path": row.target_path,
        "state": row.state,
        "phase": row.phase + 1,
        "where": f"phase {row.phase + 1} of {len(phases)}, {percent(phases[row.phase].share)}",
        "phases": [
            {
                "percent": p.share / 100,
                "soak_hours": p.soak_seconds / 3600,
                "min_healthy": p.min_healthy,
            }
            for p in phases
        ],
        "selection": row.selection,
        "brakes": row.brakes,
        "stepping_stone": row.stepping_stone,
        "phase_started_at": iso_utc(aware(row.phase_started_at)),
        "updated_at": iso_utc(aware(row.updated_at)),
        "reason": row.reason,
    }
    if with_history:
        document["figures"] = rollouts.cohort_figures(session, row, now).to_json()
        document["history"] = [
            {
                "at": iso_utc(aware(e.at)),
                "actor": e.actor,
                "from": e.from_state,
                "to": e.to_state,
                "phase": e.phase + 1,
                "reason": e.reason,
                "figures": e.figures,
            }
            for e in rollouts.history(session, row.id)
        ]
    return document


def _print(cli: CliContext, document: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(document)
        return
    cli.console.print(
        f"{document['id']}: {document['model']} {document['build']}, {document['state']}, "
        f"{document['where']}"
    )
    if document["reason"]:
        cli.console.print(f"  last change: {document['reason']}")
    figures = document.get("figures")
    if figures:
        cli.console.print(
            f"  cohort: {figures['offered']} offered, {figures['installs']} installed, "
            f"{figures['healthy']} healthy, {figures['failed']} failed, "
            f"{figures['rolled_back']} rolled back, {figures['silent']} silent"
        )
    for event in document.get("history", []):
        cli.console.print(
            f"  {event['at']} {event['actor']}: {event['from'] or '-'} -> {event['to']} "
            f"(phase {event['phase']}) {event['reason']}"
        )
