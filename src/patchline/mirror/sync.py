"""``sync_mirror``: copy a signed repository into a folder any static host can serve,
verifying every byte before it is published, in an order that keeps the mirror whole.

One sync: take the mirror's lock; refresh the mirror's trusted metadata from the
source with ngclient (from the operator's root on the first sync) and verify every
delegated role; refuse a source older than what the mirror serves; download each
missing target to a staging file, checked against its signed length and hashes; then
publish targets, roots, delegated roles, targets, snapshot and, last, timestamp.json.
Any refusal or failure before that last rename leaves the mirror serving its previous
state.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import urllib3

from patchline.clock import Clock, SystemClock
from patchline.errors import MirrorSetupError
from patchline.fsutil import write_atomic
from patchline.mirror.layout import MirrorLayout
from patchline.mirror.lock import sync_lock
from patchline.mirror.publish import Published, check_not_older, publish
from patchline.mirror.source import MirrorSource
from patchline.mirror.targets import fetch_verified, matches
from patchline.mirror.verify import VerifiedState, VerifiedTarget, verify_source
from patchline.transport.fetcher import CountingFetcher
from patchline.transport.http import http_pool


class SyncProgress(Protocol):
    """Told about each target download, for a progress display."""

    def target_started(self, target: VerifiedTarget) -> None:
        """A download of ``target`` begins."""

    def target_advanced(self, size: int) -> None:
        """``size`` more bytes of the current target arrived."""

    def target_finished(self, target: VerifiedTarget) -> None:
        """``target`` arrived and verified."""


@dataclass(frozen=True)
class SyncResult:
    """What one sync fetched, verified and published."""

    source: str
    metadata_fetched: int
    metadata_bytes: int
    targets_fetched: int
    target_bytes: int
    targets_total: int  # targets the repository signs (and the mirror now serves)
    roles: list[str]  # delegated roles verified and published
    root_version: int
    timestamp_version: int
    snapshot_version: int
    published: Published
    unreachable_roles: list[str] = field(default_factory=list)
    unauthorized_targets: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether the mirror now serves a new state."""
        return self.published.timestamp_replaced


def sync_mirror(
    source: str | MirrorSource,
    dest: Path,
    *,
    root: bytes | None = None,
    clock: Clock | None = None,
    pool: urllib3.PoolManager | None = None,
    progress: SyncProgress | None = None,
) -> SyncResult:
    """Bring the mirror in ``dest`` up to the source's current signed state.

    ``root`` (the repository's root, e.g. ``1.root.json``) is required on the first
    sync and kept in ``dest/.mirror/``; later syncs may omit it. Raises MirrorBusyError
    when another sync runs, MirrorSetupError for a missing or different root,
    MirrorSourceUnreachableError, MirrorMetadataRefusedError (MirrorRollbackError,
    MirrorExpiredError) or MirrorTargetRefusedError; then the mirror serves exactly
    what it served before (at most some new, unreferenced target files were added).
    """
    src = source if isinstance(source, MirrorSource) else MirrorSource.parse(source)
    layout = MirrorLayout(dest)
    _prepare(layout)
    with sync_lock(layout.lock_file):
        bootstrap, first = _bootstrap_root(layout, root)
        src.check_present()
        fetcher = CountingFetcher(pool or http_pool(10, 30, user_agent="patchline-mirror"))
        now = (clock or SystemClock()).now()
        state = verify_source(layout.trusted_dir, bootstrap, src, fetcher, now)
        check_not_older(layout, state)
        staged = _stage_targets(layout, src, state, fetcher, progress)
        published = publish(layout, state, staged)
        shutil.rmtree(layout.staging_dir, ignore_errors=True)
        if first:
            write_atomic(layout.bootstrap_root, bootstrap)
    metadata = [t for t in fetcher.transfers if t.url.startswith(src.metadata_url)]
    targets = [t for t in fetcher.transfers if t.url.startswith(src.targets_url)]
    return SyncResult(
        source=src.base_url,
        metadata_fetched=len(metadata),
        metadata_bytes=sum(t.size for t in metadata),
        targets_fetched=len(targets),
        target_bytes=sum(t.size for t in targets),
        targets_total=len(state.target_files),
        roles=[r.name for r in state.delegated],
        root_version=state.roots[-1].version,
        timestamp_version=state.timestamp.version,
        snapshot_version=state.snapshot.version,
        published=published,
        unreachable_roles=state.unreachable_roles,
        unauthorized_targets=state.unauthorized_targets,
    )


def _prepare(layout: MirrorLayout) -> None:
    if layout.dest.exists() and not layout.dest.is_dir():
        raise MirrorSetupError(f"{layout.dest} is not a folder")
    try:
        layout.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MirrorSetupError(f"cannot create the mirror in {layout.dest}: {exc}") from exc


def _bootstrap_root(layout: MirrorLayout, given: bytes | None) -> tuple[bytes, bool]:
    """The root to start trust from, and whether this is the mirror's first sync."""
    try:
        kept: bytes | None = layout.bootstrap_root.read_bytes()
    except FileNotFoundError:
        kept = None
    if kept is not None:
        if given is not None and given != kept:
            raise MirrorSetupError(
                f"this mirror already trusts another root ({layout.bootstrap_root})",
                hint="omit --root (the mirror follows the root chain itself), or start a "
                "new mirror in an empty folder",
            )
        return kept, False
    if given is None:
        raise MirrorSetupError(
            f"{layout.dest} has not been synced yet: its first sync needs the repository's root",
            hint="pass --root 1.root.json (the root devices ship with, from the maker)",
        )
    # Whatever a failed first sync left in the trusted folder came from another start.
    shutil.rmtree(layout.trusted_dir, ignore_errors=True)
    return given, True


def _stage_targets(
    layout: MirrorLayout,
    src: MirrorSource,
    state: VerifiedState,
    fetcher: CountingFetcher,
    progress: SyncProgress | None,
) -> dict[Path, Path]:
    """Download every target the mirror lacks into the staging folder, verified.

    A target verified into staging by an earlier, failed sync is not fetched again.
    """
    staged: dict[Path, Path] = {}
    seen: set[Path] = set()
    for target in state.target_files:
        final = layout.target_file(target.path, target.digest)
        if final in seen or matches(final, target):
            continue
        seen.add(final)
        name = hashlib.sha256(str(final.relative_to(layout.dest)).encode()).hexdigest()
        staging = layout.staging_dir / name
        if not matches(staging, target):
            directory, sep, base = target.path.rpartition("/")
            url = f"{src.targets_url}{directory}{sep}{target.digest}.{base}"
            if progress is not None:
                progress.target_started(target)
            fetch_verified(
                fetcher, url, target, staging, progress.target_advanced if progress else None
            )
            if progress is not None:
                progress.target_finished(target)
        staged[staging] = final
    return staged
