"""``patchline continuity add-successor|handover``: who signs if the maker no longer can."""

from __future__ import annotations

from pathlib import Path

import click

from patchline.cli.context import CliContext, pass_cli
from patchline.errors import UsageError
from patchline.repository.continuity import PUBLIC_KEYS_FILE, add_successor, handover


@click.group()
def continuity() -> None:
    """Signing continuity: a named successor that can take over signing.

    Exit codes: 0 done; 2 bad usage; 4 unknown or duplicate successor, bad key file,
    too few keys for root's threshold, signing or key problem. On any error the
    repository is unchanged. See docs/continuity.md.
    """


@continuity.command("add-successor")
@click.argument("name")
@click.option(
    "--key-file",
    "key_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The successor's public key (JSON); repeat for each key, as many as root's threshold.",
)
@click.option("--generate", is_flag=True, help="Make the successor's keys here, encrypted.")
@click.option(
    "--keys-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --generate: a new folder for the successor's keys, which the successor takes away.",
)
@pass_cli
def add_successor_command(
    cli: CliContext, name: str, key_files: tuple[Path, ...], generate: bool, keys_dir: Path | None
) -> None:
    """Name NAME as successor: its keys join root's root keys, enough to sign a new root."""
    if not generate and keys_dir is not None:
        raise UsageError("--keys-dir goes with --generate")
    if generate == bool(key_files):
        raise UsageError("give either --key-file (one or more) or --generate --keys-dir DIR")
    if generate and keys_dir is None:
        raise UsageError("--generate needs --keys-dir DIR, a new folder outside the repository")
    result = add_successor(
        cli.open_repository(),
        name,
        key_files=list(key_files) if key_files else None,
        generate_into=keys_dir if generate else None,
    )
    keys = ", ".join(k[:12] for k in result.keyids)
    cli.console.print(
        f"Successor {name} named in root version {result.root_version} with keys {keys}: "
        f"{len(result.keyids)} of root's threshold {result.threshold}, so it can sign a new root."
    )
    if generate:
        cli.console.print(
            f"Hand {keys_dir} (and the keys' passphrase, separately) to {name}; its public keys "
            f"are in {keys_dir}/{PUBLIC_KEYS_FILE}. Keep no copy of it here."
        )


@continuity.command("handover")
@click.option("--successor", required=True, help="The successor's name, as recorded in root.")
@click.option(
    "--keys-dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The successor's key folder: its root keys; new online keys are made here.",
)
@pass_cli
def handover_command(cli: CliContext, successor: str, keys_dir: Path) -> None:
    """Take over signing: new online keys, a new root signed by the successor's keys."""
    result = handover(cli.home, successor, keys_dir, settings=cli.settings)
    for role, (old, new) in result.replaced.items():
        olds = ", ".join(k[:12] for k in old) or "-"
        news = ", ".join(k[:12] for k in new)
        cli.console.print(f"{role:12} {olds} -> {news}")
    cli.console.print(
        f"{successor} now signs this repository (root version {result.root_version}); "
        "devices follow the root chain from any root they already trust."
    )
