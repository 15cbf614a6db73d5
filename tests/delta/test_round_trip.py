"""Building a delta and applying it reproduces the target image exactly."""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from patchline.delta import DeltaInfo, apply_delta, build_delta, read_header
from patchline.delta.format import OP_ADD, OP_COPY, OP_DIFF
from patchline.delta.reader import PatchReader
from tests.delta.conftest import edited

Write = Callable[[str, bytes], Path]


def _round_trip(write: Write, tmp_path: Path, old: bytes, new: bytes) -> DeltaInfo:
    source, target = write("source.img", old), write("target.img", new)
    patch = tmp_path / "delta.pld"
    info = build_delta(source, target, patch)
    out = tmp_path / "out.img"
    apply_delta(
        source, patch, out, expected_sha256=info.target_sha256, expected_length=info.target_length
    )
    assert out.read_bytes() == new
    return info


@pytest.mark.usefixtures("small_spans")
def test_round_trip_survives_inserts_deletes_and_overwrites(write: Write, tmp_path: Path) -> None:
    rng = random.Random(1)
    old = rng.randbytes(1_500_000)
    new = edited(
        old,
        [
            ("insert", 10_000, 777),
            ("delete", 300_000, 5_000),
            ("overwrite", 700_000, 64),
            ("insert", 1_000_000, 100_000),
            ("delete", 1_200_000, 150_000),
        ],
        rng,
    )
    info = _round_trip(write, tmp_path, old, new)
    assert info.patch_length < 0.15 * len(new)


@pytest.mark.usefixtures("small_spans")
def test_shifted_content_is_found_and_costs_little(write: Write, tmp_path: Path) -> None:
    rng = random.Random(2)
    old = rng.randbytes(1_000_000)
    new = old[400_000:] + rng.randbytes(1000) + old[:400_000]
    info = _round_trip(write, tmp_path, old, new)
    assert info.patch_length < 20_000
    with (tmp_path / "delta.pld").open("rb") as f:
        ops = list(PatchReader(f).operations())
    # The span across the seam reads both ends of the source.
    assert any(op.kind in (OP_DIFF, OP_ADD) and len(op.extents) == 2 for op in ops)


@pytest.mark.usefixtures("small_spans")
def test_identical_images_give_a_patch_of_copies(write: Write, tmp_path: Path) -> None:
    data = random.Random(3).randbytes(600_000)
    info = _round_trip(write, tmp_path, data, data)
    with (tmp_path / "delta.pld").open("rb") as f:
        kinds = {op.kind for op in PatchReader(f).operations()}
    assert kinds == {OP_COPY}
    assert info.patch_length < 2_000


@pytest.mark.parametrize(
    ("old", "new"),
    [(b"", b""), (b"", b"new bytes" * 100), (b"old bytes" * 100, b""), (b"a", b"b")],
    ids=["both-empty", "empty-source", "empty-target", "one-byte"],
)
def test_empty_and_tiny_images_round_trip(
    write: Write, tmp_path: Path, old: bytes, new: bytes
) -> None:
    _round_trip(write, tmp_path, old, new)


def test_unrelated_images_round_trip_and_compressible_data_shrinks(
    write: Write, tmp_path: Path
) -> None:
    new = b"".join(b"line %d of a log\n" % i for i in range(20_000))
    info = _round_trip(write, tmp_path, random.Random(4).randbytes(50_000), new)
    assert info.patch_length < len(new) / 5


@pytest.mark.usefixtures("small_spans")
def test_delta_info_names_both_images_and_the_patch(write: Write, tmp_path: Path) -> None:
    rng = random.Random(5)
    old = rng.randbytes(200_000)
    new = edited(old, [("overwrite", 1000, 10)], rng)
    info = _round_trip(write, tmp_path, old, new)
    patch_bytes = (tmp_path / "delta.pld").read_bytes()
    assert info.source_sha256 == hashlib.sha256(old).hexdigest()
    assert info.target_sha256 == hashlib.sha256(new).hexdigest()
    assert (info.source_length, info.target_length) == (len(old), len(new))
    assert info.patch_sha256 == hashlib.sha256(patch_bytes).hexdigest()
    assert info.patch_length == len(patch_bytes)
    header = read_header(io.BytesIO(patch_bytes))
    assert header.source_sha256.hex() == info.source_sha256
    assert header.target_length == len(new)


@pytest.mark.usefixtures("small_spans")
def test_build_is_deterministic(write: Write, tmp_path: Path) -> None:
    rng = random.Random(6)
    old = rng.randbytes(400_000)
    source = write("s.img", old)
    target = write("t.img", edited(old, [("insert", 5000, 300), ("delete", 200_000, 999)], rng))
    first = build_delta(source, target, tmp_path / "one.pld")
    second = build_delta(source, target, tmp_path / "two.pld")
    assert first == second
    assert (tmp_path / "one.pld").read_bytes() == (tmp_path / "two.pld").read_bytes()


@pytest.mark.usefixtures("small_spans")
def test_progress_reports_each_span_up_to_the_target_length(write: Write, tmp_path: Path) -> None:
    data = random.Random(7).randbytes(300_000)
    calls: list[tuple[int, int]] = []
    build_delta(
        write("s.img", data),
        write("t.img", data[::-1]),
        tmp_path / "d.pld",
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[-1] == (len(data), len(data))
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert len(calls) == 5


@pytest.mark.usefixtures("small_spans")
def test_apply_reads_the_patch_from_a_stream(write: Write, tmp_path: Path) -> None:
    rng = random.Random(8)
    old = rng.randbytes(300_000)
    new = edited(old, [("insert", 123_456, 4321)], rng)
    source, target = write("s.img", old), write("t.img", new)
    info = build_delta(source, target, tmp_path / "d.pld")
    stream = io.BytesIO((tmp_path / "d.pld").read_bytes())
    out = tmp_path / "out.img"
    apply_delta(source, stream, out, expected_sha256=info.target_sha256, expected_length=len(new))
    assert out.read_bytes() == new
