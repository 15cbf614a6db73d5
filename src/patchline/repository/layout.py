"""Where a repository keeps its files.

A repository home holds::

    patchline.toml   settings (expiries, where the keys are)
    public/          the static tree any host can serve: metadata/ and targets/
    keys/            private keys, encrypted (may live elsewhere: see ``keys_dir``)
    .publish.lock    taken by every process that changes the repository
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from patchline.errors import RepositoryCorruptError
from patchline.wire.paths import UnsafePathError, consistent_target_file

CONFIG_NAME = "patchline.toml"
_VERSIONED_ROOT = re.compile(r"^(\d+)\.root\.json$")


@dataclass(frozen=True)
class RepositoryLayout:
    """The paths of one repository home."""

    home: Path

    @property
    def config_file(self) -> Path:
        """The settings file."""
        return self.home / CONFIG_NAME

    @property
    def public_dir(self) -> Path:
        """The tree a static host serves (metadata/ and targets/)."""
        return self.home / "public"

    @property
    def metadata_dir(self) -> Path:
        """Signed metadata, consistent-snapshot names (``N.ROLE.json``)."""
        return self.public_dir / "metadata"

    @property
    def targets_dir(self) -> Path:
        """Target files, stored under ``DIR/HASH.NAME``."""
        return self.public_dir / "targets"

    @property
    def lock_file(self) -> Path:
        """The publish lock."""
        return self.home / ".publish.lock"

    def metadata_file(self, role: str, version: int) -> Path:
        """The file of one version of a versioned role."""
        return self.metadata_dir / f"{version}.{role}.json"

    @property
    def timestamp_file(self) -> Path:
        """The one unversioned file; replacing it publishes a new state."""
        return self.metadata_dir / "timestamp.json"

    def target_file(self, target_path: str, sha256: str) -> Path:
        """Where a target with this path and hash is stored (consistent snapshot).

        Raises RepositoryCorruptError for a signed path that could name a file outside
        ``targets/`` (``..``, absolute, ...): a key holder signed it, and it is never opened.
        """
        try:
            return consistent_target_file(self.targets_dir, target_path, sha256)
        except UnsafePathError as exc:
            raise RepositoryCorruptError(
                str(exc),
                hint="remove that target from the role that signs it; no file is read or "
                "written under such a path",
            ) from None

    def root_versions(self) -> list[int]:
        """Every root version present, ascending."""
        if not self.metadata_dir.is_dir():
            return []
        versions = []
        for entry in self.metadata_dir.iterdir():
            match = _VERSIONED_ROOT.match(entry.name)
            if match:
                versions.append(int(match.group(1)))
        return sorted(versions)
