"""Where a mirror copies from: a base URL, or a local folder (SD card, USB stick)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from patchline.errors import MirrorSourceUnreachableError, UsageError
from patchline.transport.urls import RepositoryUrl


@dataclass(frozen=True)
class MirrorSource(RepositoryUrl):
    """A copy of a repository's public tree (``metadata/`` and ``targets/``)."""

    @classmethod
    def parse(cls, location: str) -> MirrorSource:
        """An ``http(s)://`` or ``file://`` URL, or a plain folder path.

        Raises UsageError for another URL scheme.
        """
        scheme = urlparse(location).scheme
        if scheme in {"http", "https", "file"}:
            return cls(location.rstrip("/"))
        if "://" in location:
            raise UsageError(f"cannot mirror from {location!r}: use http(s)://, file:// or a path")
        return cls(Path(location).absolute().as_uri())

    def check_present(self) -> None:
        """Raise MirrorSourceUnreachableError when a folder source is not there."""
        folder = self.folder
        if folder is not None and not (folder / "metadata").is_dir():
            raise MirrorSourceUnreachableError(
                f"{folder} holds no repository (no metadata/ folder)",
                hint="mount the card or stick, or give the folder that holds metadata/",
            )
