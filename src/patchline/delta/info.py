"""What a built delta is: the images it joins, its own digest, and how it was made."""

from __future__ import annotations

from dataclasses import dataclass

#: Name of the method ``build_delta`` uses; recorded in every DeltaInfo.
METHOD = (
    "patchline-extents-v2 (COPY / REPLACE / DIFF by HDiffPatch / ADD of byte differences "
    "over HDiffPatch's covers, in LZMA2 frames)"
)


@dataclass(frozen=True)
class DeltaInfo:
    """A delta file's identity: source, target and patch as SHA-256 (hex) and length."""

    source_sha256: str
    source_length: int
    target_sha256: str
    target_length: int
    patch_sha256: str
    patch_length: int
    method: str = METHOD

    def __post_init__(self) -> None:
        for name in ("source_sha256", "target_sha256", "patch_sha256"):
            value = getattr(self, name)
            if len(value) != 64 or value.strip("0123456789abcdef"):
                raise ValueError(f"{name} must be 64 lowercase hex digits, got {value!r}")
        for name in ("source_length", "target_length", "patch_length"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
