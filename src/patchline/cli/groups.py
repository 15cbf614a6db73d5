"""``patchline group create|list|show|add|remove|delete|retry``: named device groups that
rollouts select (``patchline rollout create --group NAME``), on the server's database;
every server process applies a change within a second."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from patchline.cli.context import CliContext, cli_actor, pass_cli
from patchline.cli.database import database_option, open_database
from patchline.cli.output import iso_utc, json_option, print_json
from patchline.clock import SystemClock
from patchline.director.catalog import aware
from patchline.errors import UsageError
from patchline.fleet import groups


@click.group()
def group() -> None:
    """Named sets of devices that rollouts select."""


def _ids(devices: tuple[str, ...], from_file: Path | None) -> list[str]:
    """The device ids given as arguments and, one per line, in a file."""
    ids = list(devices)
    if from_file is not None:
        try:
            text = from_file.read_text()
        except OSError as exc:
            raise UsageError(f"cannot read {from_file}: {exc.strerror}") from None
        ids += [line.strip() for line in text.splitlines() if line.strip()]
    if not ids:
        raise UsageError("name at least one device (arguments or --from-file)")
    return ids


def _summary_json(summary: groups.GroupSummary) -> dict[str, Any]:
    return {
        "name": summary.name,
        "description": summary.description,
        "created_at": iso_utc(aware(summary.created_at)),
        "created_by": summary.created_by,
        "members": summary.members,
        "rollouts": list(summary.rollouts),
    }


@group.command("create")
@click.argument("name")
@click.option("--description", default="", help="What the group is for.")
@database_option
@pass_cli
def create_command(cli: CliContext, name: str, description: str, database_url: str | None) -> None:
    """Create an empty group NAME."""
    with (
        open_database(cli, database_url, "create the group", UsageError) as db,
        db.transaction() as session,
    ):
        groups.create_group(session, name, description, cli_actor(), SystemClock().now())
    cli.console.print(f"Created group {name}; add devices with `patchline group add {name} ID`.")


@group.command("list")
@json_option
@database_option
@pass_cli
def list_command(cli: CliContext, as_json: bool, database_url: str | None) -> None:
    """List groups with their sizes and the open rollouts that select them."""
    with (
        open_database(cli, database_url, "list groups", UsageError) as db,
        db.transaction() as session,
    ):
        rows = [_summary_json(g) for g in groups.summaries(session)]
    if as_json:
        print_json({"groups": rows})
        return
    table = Table()
    for column in ("name", "members", "rollouts", "description"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["name"], str(r["members"]), ", ".join(r["rollouts"]), r["description"])
    cli.console.print(table)


@group.command("show")
@click.argument("name")
@click.option("--members", "with_members", is_flag=True, help="List the device ids too.")
@json_option
@database_option
@pass_cli
def show_command(
    cli: CliContext, name: str, with_members: bool, as_json: bool, database_url: str | None
) -> None:
    """Show group NAME (and its devices with --members)."""
    with (
        open_database(cli, database_url, "read the group", UsageError) as db,
        db.transaction() as session,
    ):
        groups.get_group(session, name)
        document = _summary_json(groups.summaries(session, [name])[0])
        if with_members:
            document["device_ids"] = groups.member_ids(session, name, limit=groups.MAX_CHANGE)
    if as_json:
        print_json(document)
        return
    cli.console.print(
        f"{name}: {document['members']} device(s); selected by "
        f"{', '.join(document['rollouts']) or 'no open rollout'}"
    )
    for device_id in document.get("device_ids", ()):
        click.echo(device_id)


def _change(verb: str) -> click.Command:
    @click.argument("name")
    @click.argument("devices", nargs=-1)
    @click.option(
        "--from-file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="A file with one device id per line.",
    )
    @click.option("--reason", default="", help="Why (kept in the audit chain).")
    @database_option
    @pass_cli
    def command(
        cli: CliContext,
        name: str,
        devices: tuple[str, ...],
        from_file: Path | None,
        reason: str,
        database_url: str | None,
    ) -> None:
        ids = _ids(devices, from_file)
        with (
            open_database(cli, database_url, f"{verb} devices", UsageError) as db,
            db.transaction() as session,
        ):
            added, removed = groups.change_members(
                session,
                name,
                add=ids if verb == "add" else [],
                remove=ids if verb == "remove" else [],
                reason=reason,
                actor=cli_actor(),
                now=SystemClock().now(),
            )
        changed = added if verb == "add" else removed
        cli.console.print(
            f"{verb.capitalize()}ed {changed} device(s) "
            f"({len(ids) - changed} already {'in' if verb == 'add' else 'not in'} {name})."
        )

    command.__doc__ = f"{verb.capitalize()} devices {'to' if verb == 'add' else 'from'} NAME."
    return group.command(verb)(command)


_change("add")
_change("remove")


@group.command("delete")
@click.argument("name")
@click.option("--reason", default="", help="Why (kept in the audit chain).")
@database_option
@pass_cli
def delete_command(cli: CliContext, name: str, reason: str, database_url: str | None) -> None:
    """Delete group NAME (refused while an open rollout selects it)."""
    with (
        open_database(cli, database_url, "delete the group", UsageError) as db,
        db.transaction() as session,
    ):
        groups.delete_group(session, name, reason, cli_actor(), SystemClock().now())
    cli.console.print(f"Deleted group {name}; its devices stay enrolled.")


@group.command("retry")
@click.argument("name")
@click.argument("build")
@click.option("--reason", required=True, help="Why (kept in the audit chain).")
@database_option
@pass_cli
def retry_command(
    cli: CliContext, name: str, build: str, reason: str, database_url: str | None
) -> None:
    """Offer BUILD again to every device of NAME it failed on."""
    with (
        open_database(cli, database_url, "retry the build", UsageError) as db,
        db.transaction() as session,
    ):
        ids = groups.retry_group(session, name, build, reason, cli_actor(), SystemClock().now())
    cli.console.print(f"Build {build} is offered again to {len(ids)} device(s) of {name}.")
