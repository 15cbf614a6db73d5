"""Where a mirror copies from: a base URL, or a local folder (SD card, USB stick), and
a fetcher that counts what it transferred."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import urllib3

from patchline.agent.fetcher import SourceFetcher, file_url_path
from patchline.errors import MirrorSourceUnreachableError, UsageError


@dataclass(frozen=True)
class MirrorSource:
    """A copy of a repository's public tree (``metadata/`` and ``targets/``)."""

    base_url: str  # http(s)://... or file://..., no trailing slash

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

    @property
    def folder(self) -> Path | None:
        """The local folder, for a ``file://`` source."""
        return file_url_path(self.base_url) if self.base_url.startswith("file:") else None

    @property
    def metadata_url(self) -> str:
        """Where the TUF metadata lives."""
        return f"{self.base_url}/metadata/"

    @property
    def targets_url(self) -> str:
        """Where the target files live."""
        return f"{self.base_url}/targets/"

    def check_present(self) -> None:
        """Raise MirrorSourceUnreachableError when a folder source is not there."""
        folder = self.folder
        if folder is not None and not (folder / "metadata").is_dir():
            raise MirrorSourceUnreachableError(
                f"{folder} holds no repository (no metadata/ folder)",
                hint="mount the card or stick, or give the folder that holds metadata/",
            )


@dataclass(frozen=True)
class Transfer:
    """One file fetched whole from the source."""

    url: str
    size: int


def mirror_pool(connect_timeout: float = 10, read_timeout: float = 30) -> urllib3.PoolManager:
    """A connection pool that fails fast: one connect attempt, no silent retries."""
    return urllib3.PoolManager(
        retries=urllib3.Retry(total=0, redirect=0, raise_on_status=False),
        timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
        headers={"User-Agent": "patchline-mirror"},
    )


class CountingFetcher(SourceFetcher):
    """The agent's fetcher (HTTP and folders; a missing file is a 404), recording every
    file it transferred whole."""

    def __init__(self, pool: urllib3.PoolManager) -> None:
        super().__init__(pool)
        self.transfers: list[Transfer] = []

    def _fetch(self, url: str) -> Iterator[bytes]:
        return self._count(url, super()._fetch(url))

    def _count(self, url: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        size = 0
        for chunk in chunks:
            size += len(chunk)
            yield chunk
        self.transfers.append(Transfer(url, size))
