"""Where a mirror keeps its files.

A mirror folder is the static tree a host serves, plus a private ``.mirror/`` folder::

    metadata/N.root.json, V.ROLE.json, timestamp.json   exact bytes the source signed
    targets/DIR/HASH.NAME                               verified target files
    .mirror/bootstrap.root.json   the root the operator supplied on the first sync
    .mirror/metadata/             python-tuf's trusted metadata (never served as is)
    .mirror/staging/              targets verified but not yet published
    .mirror/sync.lock             held by the one sync running on this mirror

Nothing in ``.mirror/`` is secret (a mirror never holds a key), but it is not part of
the repository: a host may hide dot-folders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from patchline.errors import MirrorMetadataRefusedError
from patchline.wire.paths import UnsafePathError, consistent_target_file

TOP_LEVEL = frozenset({"root", "timestamp", "snapshot", "targets"})


@dataclass(frozen=True)
class MirrorLayout:
    """The paths of one mirror folder."""

    dest: Path

    @property
    def metadata_dir(self) -> Path:
        """Published metadata, consistent-snapshot names."""
        return self.dest / "metadata"

    @property
    def targets_dir(self) -> Path:
        """Published target files, ``DIR/HASH.NAME``."""
        return self.dest / "targets"

    @property
    def state_dir(self) -> Path:
        """The mirror's private folder."""
        return self.dest / ".mirror"

    @property
    def bootstrap_root(self) -> Path:
        """The root the operator supplied on the first sync: the mirror's trust anchor."""
        return self.state_dir / "bootstrap.root.json"

    @property
    def trusted_dir(self) -> Path:
        """python-tuf's metadata directory: the newest metadata the mirror has verified."""
        return self.state_dir / "metadata"

    @property
    def staging_dir(self) -> Path:
        """Targets downloaded and verified, waiting to be published."""
        return self.state_dir / "staging"

    @property
    def lock_file(self) -> Path:
        """The sync lock."""
        return self.state_dir / "sync.lock"

    @property
    def timestamp_file(self) -> Path:
        """The one unversioned file; replacing it publishes a new state."""
        return self.metadata_dir / "timestamp.json"

    def metadata_file(self, role: str, version: int) -> Path:
        """The published file of one version of a versioned role.

        Raises MirrorMetadataRefusedError for a role name that is not a plain file name.
        """
        return self.metadata_dir / f"{version}.{safe_role_name(role)}.json"

    def target_file(self, target_path: str, digest: str) -> Path:
        """Where a target with this path and hash is published (consistent snapshot).

        Raises MirrorMetadataRefusedError for a path that would leave ``targets/``.
        """
        try:
            return consistent_target_file(self.targets_dir, target_path, digest)
        except UnsafePathError as exc:
            raise MirrorMetadataRefusedError(f"{exc}; it cannot be mirrored") from None


def safe_role_name(role: str) -> str:
    """``role`` if it can name a file in ``metadata/``; else MirrorMetadataRefusedError."""
    if not role or "/" in role or "\\" in role or role.startswith(".") or "\0" in role:
        raise MirrorMetadataRefusedError(f"role name {role!r} cannot be mirrored")
    return role
