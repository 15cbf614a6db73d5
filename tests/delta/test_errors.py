"""Applying a delta fails loudly, by meaning, and leaves no output behind."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from patchline.delta import DeltaInfo, apply_delta, build_delta
from patchline.errors import (
    CorruptDeltaError,
    DeltaError,
    DeltaResultMismatchError,
    DeltaSourceMismatchError,
)
from tests.delta.conftest import edited


@pytest.fixture
def built(tmp_path: Path, small_spans: int) -> tuple[Path, Path, DeltaInfo]:
    rng = random.Random(11)
    old = rng.randbytes(400_000)
    new = edited(old, [("insert", 50_000, 2000), ("overwrite", 250_000, 30_000)], rng)
    source = tmp_path / "source.img"
    source.write_bytes(old)
    (tmp_path / "target.img").write_bytes(new)
    patch = tmp_path / "delta.pld"
    info = build_delta(source, tmp_path / "target.img", patch)
    return source, patch, info


def _apply(source: Path, patch: Path, info: DeltaInfo, out: Path) -> None:
    apply_delta(
        source, patch, out, expected_sha256=info.target_sha256, expected_length=info.target_length
    )


def _nothing_left(out: Path) -> bool:
    return not out.exists() and not list(out.parent.glob(f".{out.name}.*"))


@pytest.mark.parametrize("where", [0, 10, 60, 100, 150, 400, 3_000, -40, -1])
def test_a_flipped_patch_byte_is_reported_as_corrupt(
    built: tuple[Path, Path, DeltaInfo], tmp_path: Path, where: int
) -> None:
    source, patch, info = built
    data = bytearray(patch.read_bytes())
    data[where] ^= 0x40
    patch.write_bytes(bytes(data))
    out = tmp_path / "out.img"
    with pytest.raises(CorruptDeltaError):
        _apply(source, patch, info, out)
    assert _nothing_left(out)


@pytest.mark.parametrize("keep", [0, 7, 50, 200, 5_000, -33, -1])
def test_a_truncated_patch_is_reported_as_corrupt(
    built: tuple[Path, Path, DeltaInfo], tmp_path: Path, keep: int
) -> None:
    source, patch, info = built
    data = patch.read_bytes()
    patch.write_bytes(data[:keep])
    out = tmp_path / "out.img"
    with pytest.raises(CorruptDeltaError):
        _apply(source, patch, info, out)
    assert _nothing_left(out)


def test_trailing_bytes_after_the_patch_are_reported_as_corrupt(
    built: tuple[Path, Path, DeltaInfo], tmp_path: Path
) -> None:
    source, patch, info = built
    patch.write_bytes(patch.read_bytes() + b"\0")
    with pytest.raises(CorruptDeltaError):
        _apply(source, patch, info, tmp_path / "out.img")


def test_a_source_with_one_changed_byte_is_reported_as_the_wrong_source(
    built: tuple[Path, Path, DeltaInfo], tmp_path: Path
) -> None:
    source, patch, info = built
    data = bytearray(source.read_bytes())
    data[100_000] ^= 1
    source.write_bytes(bytes(data))
    out = tmp_path / "out.img"
    with pytest.raises(DeltaSourceMismatchError):
        _apply(source, patch, info, out)
    assert _nothing_left(out)


def test_a_source_of_another_length_is_reported_as_the_wrong_source(
    built: tuple[Path, Path, DeltaInfo], tmp_path: Path
) -> None:
    source, patch, info = built
    source.write_bytes(source.read_bytes()[:-1])
    with pytest.raises(DeltaSourceMismatchError):
        _apply(source, patch, info, tmp_path / "out.img")


def test_an_unexpected_target_hash_is_a_result_mismatch_and_keeps_the_old_output(
    built: tuple[Path, Path, DeltaInfo], tmp_path: Path
) -> None:
    source, patch, info = built
    out = tmp_path / "out.img"
    out.write_bytes(b"previous contents")
    with pytest.raises(DeltaResultMismatchError):
        apply_delta(
            source, patch, out, expected_sha256="0" * 64, expected_length=info.target_length
        )
    assert out.read_bytes() == b"previous contents"


def test_not_a_delta_at_all_is_reported_as_corrupt(
    built: tuple[Path, Path, DeltaInfo], tmp_path: Path
) -> None:
    source, patch, info = built
    patch.write_bytes(b"PK\x03\x04 this is a zip file, not a delta" * 10)
    with pytest.raises(CorruptDeltaError, match="magic"):
        _apply(source, patch, info, tmp_path / "out.img")


def test_applying_onto_the_source_itself_is_refused_and_the_source_kept(
    built: tuple[Path, Path, DeltaInfo],
) -> None:
    source, patch, info = built
    before = source.read_bytes()
    with pytest.raises(DeltaError, match="own source"):
        _apply(source, patch, info, source)
    assert source.read_bytes() == before
