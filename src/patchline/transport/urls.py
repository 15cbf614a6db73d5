"""Where a copy of a repository's public tree is: a base URL (``http(s)://`` or
``file://``) holding ``metadata/`` and ``targets/``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse


def file_url_path(url: str) -> Path:
    """The local path named by a ``file://`` URL."""
    return Path(unquote(urlparse(url).path))


@dataclass(frozen=True)
class RepositoryUrl:
    """A repository's base URL, without a trailing slash."""

    base_url: str

    @classmethod
    def of_folder(cls, folder: str | Path) -> RepositoryUrl:
        """The ``file://`` URL of a local folder (made absolute)."""
        return cls(Path(folder).absolute().as_uri())

    @classmethod
    def of_url(cls, url: str) -> RepositoryUrl:
        """``url`` as a base URL (a trailing slash dropped)."""
        return cls(url.rstrip("/"))

    @property
    def metadata_url(self) -> str:
        """Where the TUF metadata lives."""
        return f"{self.base_url}/metadata/"

    @property
    def targets_url(self) -> str:
        """Where the target files live."""
        return f"{self.base_url}/targets/"

    @property
    def folder(self) -> Path | None:
        """The local folder, for a ``file://`` base URL; None otherwise."""
        return file_url_path(self.base_url) if self.base_url.startswith("file:") else None
