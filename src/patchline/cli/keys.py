"""``patchline key rotate|list``."""

from __future__ import annotations

import click

from patchline.cli.context import CliContext, pass_cli
from patchline.repository import rotate_key
from patchline.wire.offline import OFFLINE_ROLE


@click.group()
def key() -> None:
    """Signing keys: list and rotate."""


@key.command("rotate")
@click.argument("role")
@click.option("--key", "keyid", help="Key id (or its prefix) to replace; default: all of ROLE's.")
@pass_cli
def rotate_command(cli: CliContext, role: str, keyid: str | None) -> None:
    """Replace ROLE's key (root, targets, snapshot, timestamp, offline or a model) with a
    new one. Rotating offline revokes every bundle signed with the old key."""
    result = rotate_key(cli.open_repository(), role, keyid)
    for old, new in zip(result.retired, result.added, strict=True):
        cli.console.print(f"Rotated {role} key {old[:12]} -> {new[:12]}.")
    cli.console.print(
        f"Root is at version {result.root_version}; devices follow the root chain from any "
        "root they already trust."
    )
    if result.role == OFFLINE_ROLE:
        cli.console.print(
            "Devices that have this root refuse every bundle signed with the old offline "
            "key; export new bundles with: patchline bundle export"
        )


@key.command("list")
@pass_cli
def list_command(cli: CliContext) -> None:
    """List the private keys this machine holds, by role."""
    for entry in cli.open_repository().keyring.entries():
        cli.console.print(f"{entry.role:12} {entry.keyid[:16]}  {entry.uri}")
