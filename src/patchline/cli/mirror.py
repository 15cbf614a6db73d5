"""``patchline mirror sync``: keep a verified copy of the repository for any static host."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import Progress, TaskID

from patchline.cli.context import CliContext, pass_cli
from patchline.cli.progress import byte_progress
from patchline.clock import SystemClock
from patchline.mirror import SyncResult, sync_mirror
from patchline.mirror.verify import VerifiedTarget


@click.group()
def mirror() -> None:
    """Mirrors: verified copies of the signed repository, served by any static host.

    Exit codes: 0 synced (or already up to date); 30 other mirror error; 31 mirror
    folder or root unusable (first sync without --root, a different root); 32 another
    sync is running; 33 source unreachable or missing a file; 34 source metadata
    refused (unsigned, tampered, expired, older than the mirror's); 35 a target's bytes
    do not match their signed hash.
    """


@mirror.command("sync")
@click.argument("source")
@click.argument("dest_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--root",
    "root_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The repository's root to trust (1.root.json); needed on the first sync only.",
)
@pass_cli
def sync_command(ctx: CliContext, source: str, dest_dir: Path, root_file: Path | None) -> None:
    """Copy SOURCE (a URL, or a folder holding metadata/ and targets/) into DEST_DIR,
    verifying every file first; serve DEST_DIR with any static host."""
    with byte_progress(ctx.console) as bar:
        result = sync_mirror(
            source,
            dest_dir,
            root=root_file.read_bytes() if root_file else None,
            clock=SystemClock(),
            progress=_ProgressBar(bar),
        )
    for line in summary(result):
        ctx.console.print(line, highlight=False)


class _ProgressBar:
    def __init__(self, bar: Progress) -> None:
        self._bar = bar
        self._task: TaskID | None = None

    def target_started(self, target: VerifiedTarget) -> None:
        self._task = self._bar.add_task(target.path, total=target.length)

    def target_advanced(self, size: int) -> None:
        if self._task is not None:
            self._bar.advance(self._task, size)

    def target_finished(self, target: VerifiedTarget) -> None:
        if self._task is not None:
            self._bar.remove_task(self._task)
            self._task = None


def summary(result: SyncResult) -> list[str]:
    """What a sync fetched and published, in lines for a person."""
    published = result.published
    lines = [
        f"Fetched {result.metadata_fetched} metadata files ({_size(result.metadata_bytes)}) "
        f"and {result.targets_fetched} targets ({_size(result.target_bytes)}) "
        f"from {result.source}.",
        f"Verified root v{result.root_version}, timestamp v{result.timestamp_version}, "
        f"snapshot v{result.snapshot_version}, {len(result.roles)} delegated roles, "
        f"{result.targets_total} targets.",
    ]
    if result.changed:
        lines.append(
            f"Published {len(published.targets)} new targets and "
            f"{len(published.metadata)} metadata files: " + ", ".join(published.metadata) + "."
        )
    else:
        lines.append("Nothing new: the mirror already serves this state.")
    if result.unreachable_roles:
        lines.append(
            "Not published (listed in the snapshot but delegated by no role): "
            + ", ".join(result.unreachable_roles)
        )
    if result.unauthorized_targets:
        lines.append(
            "Not published (signed by a role not trusted for the path): "
            + ", ".join(result.unauthorized_targets)
        )
    return lines


def _size(size: int) -> str:
    if size < 1000:
        return f"{size} B"
    scaled = float(size)
    for unit in ("kB", "MB", "GB"):
        scaled /= 1000
        if scaled < 1000 or unit == "GB":
            break
    return f"{scaled:.1f} {unit}"
