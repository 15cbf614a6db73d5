"""A simulated device that trusts only the root it shipped with and verifies with TUF.

It refreshes metadata with python-tuf's ngclient, picks the newest signed build of its
model, downloads it (ngclient checks length and hashes), and writes it to its
inactive slot. The full device agent (A/B boot, resume, rollback, reporting) builds
on the same verification.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from tuf.api.exceptions import DownloadError, RepositoryError
from tuf.api.metadata import Metadata, Targets
from tuf.ngclient import Updater

from patchline.repository.versions import build_sort_key
from patchline.wire.release import InvalidReleaseInfo, ReleaseInfo, model_lookup_path


@dataclass
class UpdateOutcome:
    """What one update attempt did, in words."""

    installed: str | None
    message: str


class DemoDevice:
    """One device: a model, a running build, a trusted root, a metadata cache, a slot."""

    def __init__(self, directory: Path, model: str, build: str, shipped_root: bytes) -> None:
        self.directory = directory
        self.model = model
        self.build = build
        self.shipped_root = shipped_root
        (directory / "metadata").mkdir(parents=True, exist_ok=True)
        (directory / "downloads").mkdir(exist_ok=True)

    def update(self, base_url: str) -> UpdateOutcome:
        """Refresh from ``base_url``, and install the newest build if it is newer."""
        updater = Updater(
            metadata_dir=str(self.directory / "metadata"),
            metadata_base_url=f"{base_url}/metadata/",
            target_base_url=f"{base_url}/targets/",
            target_dir=str(self.directory / "downloads"),
            bootstrap=self.shipped_root,
        )
        try:
            updater.refresh()
            newest = self._newest(updater)
            if newest is None:
                return UpdateOutcome(None, f"no signed build newer than {self.build}")
            path, info = newest
            target = updater.get_targetinfo(path)
            assert target is not None
            file = updater.download_target(target)
        except (RepositoryError, DownloadError) as exc:
            return UpdateOutcome(None, f"refused: {type(exc).__name__}: {exc}")
        Path(file).replace(self.directory / "slot_b.img")
        previous, self.build = self.build, info.build
        return UpdateOutcome(
            info.build,
            f"{previous} -> {info.build} ({info.update_class.value}, patch level "
            f"{info.security_patch_level}), length and sha256 verified against signed metadata",
        )

    def _newest(self, updater: Updater) -> tuple[str, ReleaseInfo] | None:
        # Looking up a path the model's role covers makes ngclient fetch and verify that
        # role; it keeps the verified bytes in the metadata folder, where we read them.
        updater.get_targetinfo(model_lookup_path(self.model))
        cached = self.directory / "metadata" / f"{quote(self.model, safe='')}.json"
        if not cached.exists():
            return None
        role = Metadata[Targets].from_bytes(cached.read_bytes()).signed
        best: tuple[str, ReleaseInfo] | None = None
        for path, target in role.targets.items():
            try:
                info = ReleaseInfo.from_custom(target.custom)
            except InvalidReleaseInfo:
                continue
            if build_sort_key(info.build) <= build_sort_key(self.build):
                continue
            if best is None or build_sort_key(info.build) > build_sort_key(best[1].build):
                best = (path, info)
        return best
