"""``patchline init`` and ``patchline repo status|refresh``."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from patchline.cli.context import CliContext, pass_cli
from patchline.cli.output import iso_utc, json_option, print_json
from patchline.errors import UsageError
from patchline.repository import (
    Expiries,
    RepositoryConfig,
    init_repository,
    refresh,
    repository_status,
)


def parse_expiry_options(values: tuple[str, ...]) -> Expiries:
    """Read ``ROLE=DURATION`` options into an Expiries."""
    overrides: dict[str, str] = {}
    for value in values:
        role, sep, duration = value.partition("=")
        if not sep:
            raise UsageError(f"--expiry {value!r} is not ROLE=DURATION", hint="e.g. timestamp=12h")
        overrides[role.strip()] = duration.strip()
    return Expiries().with_overrides(overrides)


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--keys-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where private keys go (default: DIRECTORY/keys). Keep it off the public host.",
)
@click.option("--root-keys", default=3, show_default=True, help="Number of root keys.")
@click.option("--root-threshold", default=2, show_default=True, help="Root signatures needed.")
@click.option(
    "--expiry",
    multiple=True,
    metavar="ROLE=DURATION",
    help="Validity of a role's signatures, e.g. timestamp=12h (defaults: root=365d "
    "targets=90d models=90d snapshot=7d timestamp=1d offline=180d).",
)
@pass_cli
def init(
    cli: CliContext,
    directory: Path,
    keys_dir: Path | None,
    root_keys: int,
    root_threshold: int,
    expiry: tuple[str, ...],
) -> None:
    """Create a signed repository in DIRECTORY, with new keys for every role."""
    config = RepositoryConfig(
        keys_dir=(keys_dir or directory / "keys").absolute(),
        expiries=parse_expiry_options(expiry),
        root_threshold=root_threshold,
    )
    repo = init_repository(
        directory, config, root_keys=root_keys, settings=cli.settings, offline_key=True
    )
    cli.console.print(
        f"Created a repository in [bold]{directory}[/]: root {root_threshold} of {root_keys} "
        f"keys, targets, snapshot, timestamp and offline-bundle keys in {config.keys_dir}."
    )
    cli.console.print(f"Serve [bold]{repo.layout.public_dir}[/] from any static host.")
    cli.console.print(
        f"Devices ship with [bold]{repo.layout.metadata_file('root', 1)}[/] as their trusted root."
    )


@click.group()
def repo() -> None:
    """Inspect and maintain the signed repository."""


@repo.command()
@json_option
@pass_cli
def status(cli: CliContext, as_json: bool) -> None:
    """Show roles, keys, thresholds, expiries and releases per model."""
    report = repository_status(cli.open_repository())
    if as_json:
        print_json(
            {
                "roles": [
                    {
                        "name": role.name,
                        "version": role.version,
                        "threshold": role.threshold,
                        "keyids": list(role.keyids),
                        "keys_here": role.keys_here,
                        "expires": iso_utc(role.expires),
                        "signatures_ok": role.signatures_ok,
                    }
                    for role in report.roles
                ],
                "models": [
                    {
                        "name": model.name,
                        "releases": model.releases,
                        "newest_build": model.newest_build,
                        "newest_patch_level": model.newest_patch_level,
                    }
                    for model in report.models
                ],
                "warnings": report.warnings,
            }
        )
        return
    roles = Table(title="Roles")
    for column in ("role", "version", "threshold", "keys (here)", "expires (UTC)", "signatures"):
        roles.add_column(column)
    for role in report.roles:
        roles.add_row(
            role.name,
            str(role.version),
            str(role.threshold),
            f"{', '.join(k[:8] for k in role.keyids)} ({role.keys_here})",
            f"{role.expires:%Y-%m-%d %H:%M}",
            "ok" if role.signatures_ok else "[red]BROKEN[/]",
        )
    cli.console.print(roles)
    models = Table(title="Models")
    for column in ("model", "releases", "newest build", "newest patch level"):
        models.add_column(column)
    for model in report.models:
        models.add_row(
            model.name,
            str(model.releases),
            model.newest_build or "-",
            model.newest_patch_level or "-",
        )
    cli.console.print(models)
    for warning in report.warnings:
        cli.console.print(f"[bold yellow]warning:[/] {warning}")
    if not report.warnings:
        cli.console.print("No warnings.")


@repo.command("refresh")
@click.option("--force", is_flag=True, help="Re-sign snapshot and timestamp even if not due.")
@pass_cli
def refresh_command(cli: CliContext, force: bool) -> None:
    """Re-sign roles with less than half their validity left (run it from a timer)."""
    result = refresh(cli.open_repository(), force_online=force)
    if not result.resigned:
        cli.console.print("Nothing due: every role has more than half its validity left.")
    for role, why in result.resigned.items():
        cli.console.print(f"Re-signed {role}: {why}.")
