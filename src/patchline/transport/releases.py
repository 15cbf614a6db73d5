"""The releases a targets role signs: each Patchline target with its parsed custom field.

A target whose ``custom`` field is not a Patchline full image or delta (another
producer's, or malformed) is left out; python-tuf signs ``custom`` but never reads it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tuf.api.metadata import TargetFile

from patchline.wire.builds import build_sort_key
from patchline.wire.release import DeltaTargetInfo, InvalidReleaseInfo, ReleaseInfo


@dataclass(frozen=True)
class SignedRelease:
    """A full image signed in a targets role."""

    path: str
    target: TargetFile
    info: ReleaseInfo


@dataclass(frozen=True)
class SignedDelta:
    """A delta signed in a targets role."""

    path: str
    target: TargetFile
    info: DeltaTargetInfo


def signed_releases(targets: Mapping[str, TargetFile]) -> Iterator[SignedRelease | SignedDelta]:
    """Every full image and delta in ``targets`` (a role's targets), in the role's order."""
    for path, target in targets.items():
        found = _parsed(path, target)
        if found is not None:
            yield found


def full_releases(
    targets: Mapping[str, TargetFile], model: str | None = None, *, newest_first: bool = False
) -> list[SignedRelease]:
    """The full images in ``targets`` (of ``model``, when given) in build order, oldest
    first unless ``newest_first``."""
    found = [
        r
        for r in signed_releases(targets)
        if isinstance(r, SignedRelease) and (model is None or r.info.model == model)
    ]
    return sorted(found, key=lambda r: build_sort_key(r.info.build), reverse=newest_first)


def _parsed(path: str, target: TargetFile) -> SignedRelease | SignedDelta | None:
    custom: Any = target.custom
    kind = custom.get("kind") if isinstance(custom, dict) else None
    try:
        if kind == "full":
            return SignedRelease(path, target, ReleaseInfo.from_custom(custom))
        if kind == "delta":
            return SignedDelta(path, target, DeltaTargetInfo.from_custom(custom))
    except InvalidReleaseInfo:
        pass
    return None
