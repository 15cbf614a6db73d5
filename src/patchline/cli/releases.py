"""``patchline release add|list|restrict|resign|yank``."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import click
from rich.progress import TaskID
from rich.table import Table

from patchline.cli.context import CliContext, cli_actor, pass_cli
from patchline.cli.database import database_option, open_database
from patchline.cli.output import iso_utc, json_option, print_json
from patchline.cli.progress import byte_progress
from patchline.clock import SystemClock
from patchline.director.publishing import DeliveryRules, delivery_rules, publish
from patchline.director.yank import find_release, withdraw
from patchline.errors import PolicyError, UsageError
from patchline.repository import PublishedRelease, ReleaseRequest, releases_of
from patchline.repository.under_rules import resign_to_rules, restrict_to_rules
from patchline.wire.release import (
    Eligibility,
    UpdateClass,
    parse_date,
    parse_datetime,
    parse_regions,
)


@click.group()
def release() -> None:
    """Publish and list releases."""


@release.command("add")
@click.argument("image", type=click.Path(path_type=Path))
@click.option("--model", required=True, help="Device model the image is for.")
@click.option("--build", required=True, help="Build id; must be newer than the model's newest.")
@click.option("--security-patch-level", "spl", required=True, metavar="YYYY-MM-DD")
@click.option(
    "--class",
    "update_class",
    required=True,
    type=click.Choice([c.value for c in UpdateClass]),
    help="security (security fixes), corrective (bug fixes) or functional (new functions).",
)
@click.option("--notes", default="", help="Release notes shown to users.")
@click.option("--build-time", metavar="ISO-8601", help="When the image was built (default: now).")
@click.option("--regions-allowed", multiple=True, metavar="CODES", help="Only these regions.")
@click.option("--regions-excluded", multiple=True, metavar="CODES", help="Never these regions.")
@click.option("--deployed-before", metavar="YYYY-MM-DD", help="Only devices deployed before.")
@click.option("--valid-until", metavar="YYYY-MM-DD", help="Installable only before this date.")
@click.option("--allow-downgrade", is_flag=True, help="Accept an older build or patch level.")
@click.option(
    "--under-rules",
    is_flag=True,
    help="Sign it under the delivery rules in the server's database: refused unless a rule "
    "in force allows it, and the allowing rule's limits (and its name) signed into it.",
)
@click.option(
    "--as-of",
    metavar="YYYY-MM-DD",
    help="With --under-rules: the rules as in force on this day (default: today), for "
    "replays and audits.",
)
@database_option
@pass_cli
def add_command(
    cli: CliContext,
    image: Path,
    model: str,
    build: str,
    spl: str,
    update_class: str,
    notes: str,
    build_time: str | None,
    regions_allowed: tuple[str, ...],
    regions_excluded: tuple[str, ...],
    deployed_before: str | None,
    valid_until: str | None,
    allow_downgrade: bool,
    under_rules: bool,
    as_of: str | None,
    database_url: str | None,
) -> None:
    """Publish IMAGE as build BUILD of MODEL, signed, with its eligibility."""
    day = _as_of(as_of, under_rules)
    repo = cli.open_repository()
    request = ReleaseRequest(
        image=image,
        model=model,
        build=build,
        security_patch_level=parse_date("security patch level", spl),
        update_class=UpdateClass(update_class),
        eligibility=Eligibility(
            regions_allowed=parse_regions(regions_allowed),
            regions_excluded=parse_regions(regions_excluded),
            deployed_before=parse_date("deployed-before", deployed_before)
            if deployed_before
            else None,
            valid_until=parse_date("valid-until", valid_until) if valid_until else None,
        ),
        notes=notes,
        build_time=parse_datetime("build time", build_time) if build_time else None,
        allow_downgrade=allow_downgrade,
    )
    rules = _rules(cli, database_url) if under_rules else None
    with byte_progress(cli.console) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done)

        publication = publish(repo, request, rules=rules, day=day, progress=progress)
    for reason in publication.reasons:
        cli.console.print(f"Signed under: {reason}")
    published = publication.release
    cli.console.print(
        f"Published [bold]{published.target_path}[/] ({published.length} bytes, "
        f"sha256 {published.sha256[:16]}...), {published.info.update_class.value} update, "
        f"patch level {published.info.security_patch_level.isoformat()}."
    )
    for delta in published.deltas:
        share = 100 * delta.length / published.length
        cli.console.print(
            f"  delta from {delta.source_build}: {delta.target_path} ({delta.length} bytes, "
            f"{share:.1f} % of the image)"
        )


def _as_of(value: str | None, under_rules: bool) -> date | None:
    if value is None:
        return None
    if not under_rules:
        raise UsageError(
            "--as-of needs --under-rules", hint="it names the day whose rules sign the release"
        )
    return parse_date("as-of", value)


def _rules(cli: CliContext, database_url: str | None) -> DeliveryRules:
    with (
        open_database(cli, database_url, "read the delivery rules", PolicyError) as db,
        db.transaction() as session,
    ):
        return delivery_rules(session)


@release.command("restrict")
@database_option
@pass_cli
def restrict_command(cli: CliContext, database_url: str | None) -> None:
    """Re-sign published releases narrower where the delivery rules in force today allow
    less than they were signed with (a ban lapses them); never wider.

    Mirrors and SD cards made from then on carry the narrower limits; sync the server
    (POST /api/releases/sync) so the director's copy follows.
    """
    repo = cli.open_repository()
    rules = _rules(cli, database_url)
    today = repo.clock.now().date()
    changed = restrict_to_rules(repo, rules=rules.rules, amendments=rules.amendments, day=today)
    if not changed:
        cli.console.print(f"Every release is within the rules in force on {today}.")
    for item in changed:
        cli.console.print(
            f"Re-signed {item.target_path}: {_limits(item.before)} -> {_limits(item.after)}"
        )


@release.command("resign")
@click.option(
    "--under-rules",
    is_flag=True,
    help="Required: re-sign under the delivery rules in the server's database.",
)
@click.option(
    "--as-of",
    metavar="YYYY-MM-DD",
    help="The rules as in force on this day (default: today), for replays and audits.",
)
@database_option
@pass_cli
def resign_command(
    cli: CliContext, under_rules: bool, as_of: str | None, database_url: str | None
) -> None:
    """Re-sign published releases to what the delivery rules in force allow: narrower
    where they allow less (as restrict does), and wider where an amendment of the rule a
    release was signed under extends a date limit it took from that rule (a licence
    extended), naming the amendment. Never wider than the rules allow; a limit the
    publisher chose, regions and releases signed without a rule are never widened.

    Sync the server (POST /api/releases/sync) so the director's copy follows; its audit
    entry says widened or narrowed, and by which amendment.
    """
    if not under_rules:
        raise UsageError(
            "release resign re-signs only under the delivery rules",
            hint="say --under-rules (and --as-of DATE to sign as of another day)",
        )
    day = _as_of(as_of, under_rules)
    repo = cli.open_repository()
    rules = _rules(cli, database_url)
    day = day or repo.clock.now().date()
    changed = resign_to_rules(repo, rules=rules.rules, amendments=rules.amendments, day=day)
    if not changed:
        cli.console.print(f"Every release is as the rules in force on {day} allow.")
    for item in changed:
        how = item.after.change_from(item.before)
        under = f" under {item.after.amendment.label}" if item.after.amendment else ""
        cli.console.print(
            f"Re-signed {item.target_path} ({how}{under}): "
            f"{_limits(item.before)} -> {_limits(item.after)}"
        )


def _limits(rules: Eligibility) -> str:
    limits = [
        f"only {','.join(rules.regions_allowed)}" if rules.regions_allowed else "",
        f"not {','.join(rules.regions_excluded)}" if rules.regions_excluded else "",
        f"deployed < {rules.deployed_before}" if rules.deployed_before else "",
        f"until {rules.valid_until}" if rules.valid_until else "",
        f"rule {rules.rule}" if rules.rule else "",
        rules.amendment.label if rules.amendment else "",
    ]
    return "; ".join(x for x in limits if x) or "all"


@release.command("list")
@click.option("--model", "only_model", help="Only this model.")
@json_option
@pass_cli
def list_command(cli: CliContext, only_model: str | None, as_json: bool) -> None:
    """List published releases, oldest build first."""
    state = cli.open_repository().state()
    if as_json:
        names = [only_model] if only_model else state.model_names()
        print_json({"releases": [_release_json(r) for n in names for r in releases_of(state, n)]})
        return
    table = Table()
    for column in ("model", "build", "class", "patch level", "bytes", "eligibility"):
        table.add_column(column)
    for name in [only_model] if only_model else state.model_names():
        for item in releases_of(state, name):
            table.add_row(
                name,
                item.info.build,
                item.info.update_class.value,
                item.info.security_patch_level.isoformat(),
                str(item.length),
                _limits(item.info.eligibility),
            )
    cli.console.print(table)


def _release_json(item: PublishedRelease) -> dict[str, Any]:
    info = item.info
    return {
        "model": info.model,
        "build": info.build,
        "update_class": info.update_class.value,
        "security_patch_level": info.security_patch_level.isoformat(),
        "build_time": iso_utc(info.build_time),
        "target_path": item.target_path,
        "length": item.length,
        "sha256": item.sha256,
        "eligibility": info.eligibility.to_json(),
        "notes": info.notes,
    }


@release.command("yank")
@click.argument("model")
@click.argument("build")
@click.option("--reason", required=True, help="Why (kept in the audit chain).")
@click.option(
    "--no-lapse",
    is_flag=True,
    help="Only stop the server offering it; leave its signed eligibility as it is.",
)
@database_option
@pass_cli
def yank_command(
    cli: CliContext, model: str, build: str, reason: str, no_lapse: bool, database_url: str | None
) -> None:
    """Withdraw build BUILD of MODEL: the server stops offering it at once (devices already
    on it keep it), and its signed eligibility is re-signed valid until today, so agents
    refuse it from mirrors and SD cards made from now on."""
    now = SystemClock().now()
    with (
        open_database(cli, database_url, "yank the release", PolicyError) as db,
        db.transaction() as session,
    ):
        row = find_release(session, model, build)
        lapse_in = None if no_lapse else cli.open_repository
        withdrawal = withdraw(session, row.id, reason, cli_actor(), now, lapse_in)
    cli.console.print(f"Yanked {row.target_path}: no device is offered it from now on.")
    for item in withdrawal.lapsed:
        cli.console.print(
            f"Re-signed {item.target_path}: {_limits(item.before)} -> {_limits(item.after)}"
        )
