"""``patchline bundle init-key|export``: signed offline bundles for SD cards and USB sticks."""

from __future__ import annotations

from pathlib import Path

import click

from patchline.cli.context import CliContext, pass_cli
from patchline.repository.bundles import add_offline_key, export_bundle


@click.group()
def bundle() -> None:
    """Offline bundles: one model's update, signed to stay valid for months on a card.

    Exit codes: 0 done; 2 bad usage; 4 unknown model or build, no offline key, output
    folder not empty, signing or key problem.
    """


@bundle.command("init-key")
@pass_cli
def init_key(cli: CliContext) -> None:
    """Create the offline-bundle key and name it in a new root version."""
    repo = cli.open_repository()
    key = add_offline_key(repo)
    version = repo.state().root.signed.version
    cli.console.print(
        f"Offline key {key.keyid[:16]} created and named in root version {version}; "
        f"bundles signed with it stay valid for {repo.config.expiries.offline.days} days."
    )


@bundle.command("export")
@click.option("--model", required=True, help="The device model the bundle is for.")
@click.option("--build", default=None, help="The build to carry (default: the newest).")
@click.option("--with-deltas", is_flag=True, help="Also carry the deltas to this build.")
@click.argument("out_dir", type=click.Path(path_type=Path))
@pass_cli
def export(
    cli: CliContext, model: str, build: str | None, with_deltas: bool, out_dir: Path
) -> None:
    """Write a signed offline bundle for MODEL into OUT_DIR (new or empty)."""
    result = export_bundle(
        cli.open_repository(), model, out_dir, build=build, with_deltas=with_deltas
    )
    cli.console.print(
        f"Bundle for {result.model} build {result.build} written to [bold]{result.folder}[/]: "
        f"{len(result.targets)} file(s) to install, {result.size} bytes, valid until "
        f"{result.expires:%Y-%m-%d %H:%M} UTC.",
        highlight=False,
    )
