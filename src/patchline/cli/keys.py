"""``patchline key rotate|list``."""

from __future__ import annotations

import sys
from datetime import datetime

import click

from patchline.cli.context import CliContext, pass_cli
from patchline.cli.output import iso_utc, json_option, print_json
from patchline.errors import UsageError
from patchline.repository import Repository, rotate_key
from patchline.repository.rotation import keys_to_replace
from patchline.wire.offline import OFFLINE_ROLE


@click.group()
def key() -> None:
    """Signing keys: list and rotate."""


@key.command("rotate")
@click.argument("role")
@click.option("--key", "keyid", help="Key id (or its prefix) to replace; default: all of ROLE's.")
@click.option(
    "--all-keys",
    is_flag=True,
    help="Replace every root key at once without asking (needed off a terminal when "
    "rotating root without --key).",
)
@pass_cli
def rotate_command(cli: CliContext, role: str, keyid: str | None, all_keys: bool) -> None:
    """Replace ROLE's key (root, targets, snapshot, timestamp, offline or a model) with a
    new one. Rotating offline revokes every bundle signed with the old key.

    Rotating root without --key replaces every root key at once: on a terminal it shows
    the keys and asks first; elsewhere it needs --all-keys.
    """
    repo = cli.open_repository()
    if role == "root" and keyid is None and not all_keys:
        _confirm_all_root_keys(cli, repo)
    result = rotate_key(repo, role, keyid)
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
@json_option
@pass_cli
def list_command(cli: CliContext, as_json: bool) -> None:
    """List the private keys this machine holds, by role."""
    entries = cli.open_repository().keyring.entries()
    if as_json:
        print_json(
            {
                "keys": [
                    {
                        "role": e.role,
                        "keyid": e.keyid,
                        "uri": e.uri,
                        "created": iso_utc(datetime.fromisoformat(e.created)),
                    }
                    for e in entries
                ]
            }
        )
        return
    for entry in entries:
        cli.console.print(f"{entry.role:12} {entry.keyid[:16]}  {entry.uri}")


def _confirm_all_root_keys(cli: CliContext, repo: Repository) -> None:
    """Ask on a terminal before every root key is replaced; refuse elsewhere."""
    root = repo.state().root.signed
    keyids = keys_to_replace(repo.state(), "root", None)
    threshold = root.roles["root"].threshold
    total = len(root.roles["root"].keyids)
    which = (
        f"all {len(keyids)} root keys"
        if len(keyids) == total
        else f"the maker's {len(keyids)} root keys (a named successor's stay)"
    )
    shown = ", ".join(k[:12] for k in keyids)
    if not sys.stdin.isatty():
        raise UsageError(
            f"not rotated: this would replace {which} at once: {shown}",
            hint="replace one with --key ID, or all of them with --all-keys",
        )
    cli.console.print(
        f"This replaces {which} at once: {shown}. Root needs "
        f"{threshold} of its {total} keys to sign. The new root "
        f"(version {root.version + 1}) is signed by the old keys and the new, and devices "
        "follow the root chain to it; the old private keys are then destroyed."
    )
    if not click.confirm("Replace every root key?", default=False):
        raise UsageError(
            "not rotated: every root key was to be replaced and that was not confirmed",
            hint="replace one root key with --key ID (see patchline repo status)",
        )
