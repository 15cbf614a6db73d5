"""Where an update can come from, and the order the agent tries them in."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from patchline.transport.urls import RepositoryUrl


class SourceKind(enum.StrEnum):
    """The kinds of places that can deliver a copy of the image repository."""

    BUNDLE = "bundle"  # a local folder: SD card, USB stick
    SERVER = "server"  # the image repository published by the maker's server
    MIRROR = "mirror"  # any other static host


_LABELS = {SourceKind.BUNDLE: "SD card", SourceKind.SERVER: "Server", SourceKind.MIRROR: "Mirror"}


@dataclass(frozen=True)
class Source:
    """One copy of the image repository: a folder holding ``metadata/`` and ``targets/``,
    or a base URL serving them."""

    kind: SourceKind
    location: str

    @property
    def label(self) -> str:
        """How a person names this source, e.g. ``Mirror https://m.example``."""
        return f"{_LABELS[self.kind]} {self.location}"

    @property
    def url(self) -> RepositoryUrl:
        """Where its ``metadata/`` and ``targets/`` are (``file://`` for a folder)."""
        if self.kind is SourceKind.BUNDLE:
            return RepositoryUrl.of_folder(self.location)
        return RepositoryUrl.of_url(self.location)


def sources_in_order(
    *,
    bundles: list[str],
    server_repository: str,
    decision_mirrors: list[str],
    configured_mirrors: list[str],
    last_mirrors: list[str],
) -> list[Source]:
    """Local bundles first (no network needed), then the server's repository, then the
    mirrors the director just named, the configured mirrors, and the mirrors named by the
    last decision; each location once."""
    ordered: list[Source] = [Source(SourceKind.BUNDLE, b) for b in bundles]
    if server_repository:
        ordered.append(Source(SourceKind.SERVER, server_repository))
    for url in [*decision_mirrors, *configured_mirrors, *last_mirrors]:
        ordered.append(Source(SourceKind.MIRROR, url))
    seen: set[RepositoryUrl] = set()
    unique: list[Source] = []
    for source in ordered:
        if source.url not in seen:
            seen.add(source.url)
            unique.append(source)
    return unique
