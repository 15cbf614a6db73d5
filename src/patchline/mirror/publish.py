"""Publishing a verified state into the mirror in a safe order.

Targets first, then every root version, delegated roles, targets, snapshot, and last
``timestamp.json`` by atomic rename. Until that rename, clients read the previous
state, and every file it names is still there: nothing is ever deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tuf.api.metadata import Metadata
from tuf.api.serialization import DeserializationError

from patchline.errors import MirrorRollbackError
from patchline.fsutil import write_atomic
from patchline.mirror.layout import MirrorLayout
from patchline.mirror.targets import publish_staged
from patchline.mirror.verify import VerifiedRole, VerifiedState


@dataclass
class Published:
    """What one publish wrote into the mirror."""

    targets: list[str] = field(default_factory=list)  # paths relative to the mirror
    metadata: list[str] = field(default_factory=list)
    timestamp_replaced: bool = False


def published_timestamp_version(layout: MirrorLayout) -> int | None:
    """The version of the timestamp the mirror serves now (None: none, or unreadable)."""
    try:
        return Metadata.from_bytes(layout.timestamp_file.read_bytes()).signed.version
    except (OSError, DeserializationError):
        return None


def check_not_older(layout: MirrorLayout, state: VerifiedState) -> None:
    """Raise MirrorRollbackError when the mirror serves a newer timestamp than ``state``.

    The trusted metadata folder guards against rollback already; this guards the
    published tree too, should that folder have been lost.
    """
    served = published_timestamp_version(layout)
    if served is not None and state.timestamp.version < served:
        raise MirrorRollbackError(
            f"the source's timestamp is version {state.timestamp.version}, older than "
            f"version {served} which this mirror serves: a stale source or a rollback attack",
            hint="sync from an up-to-date source; the mirror keeps serving its newer copy",
        )


def publish(layout: MirrorLayout, state: VerifiedState, staged: dict[Path, Path]) -> Published:
    """Publish ``state``; ``staged`` maps verified staged files to their published names.

    Every metadata file written holds the exact bytes that verified. A file already
    present with the same bytes is left alone.
    """
    done = Published()
    for source, final in staged.items():
        publish_staged(source, final)
        done.targets.append(str(final.relative_to(layout.dest)))
    versioned = [*state.roots, *reversed(state.delegated), state.targets, state.snapshot]
    for role in versioned:
        if _write_if_changed(layout.metadata_file(role.name, role.version), role):
            done.metadata.append(f"{role.version}.{role.name}.json")
    if _write_if_changed(layout.timestamp_file, state.timestamp):
        done.metadata.append("timestamp.json")
        done.timestamp_replaced = True
    return done


def _write_if_changed(path: Path, role: VerifiedRole) -> bool:
    try:
        if path.read_bytes() == role.data:
            return False
    except FileNotFoundError:
        pass
    write_atomic(path, role.data)
    return True
