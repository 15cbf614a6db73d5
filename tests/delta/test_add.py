"""The ADD operation: byte differences over aligned ranges, carried as sparse digits."""

from __future__ import annotations

import hashlib
import io
import random
import struct
from collections.abc import Callable
from pathlib import Path

import hdiffpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchline.delta import add, apply_delta, build_delta
from patchline.delta.covers import Cover, encode_add, hdiff_covers
from patchline.delta.format import (
    HEADER,
    MAGIC,
    MAX_ADD_COVERS,
    OP_ADD,
    TAG_END,
    Extent,
    Operation,
    check_operation,
    encode_operation,
)
from patchline.delta.reader import PatchReader
from patchline.errors import CorruptDeltaError, DeltaSourceMismatchError

Write = Callable[[str, bytes], Path]


def _code_like(rng: random.Random, size: int) -> bytes:
    """Bytes like compiled code: runs of instructions with 32-bit relative offsets."""
    out = bytearray()
    while len(out) < size:
        out += rng.randbytes(rng.randrange(3, 12))
        out += b"\xe8" + struct.pack("<i", rng.randrange(-(1 << 20), 1 << 20))
    return bytes(out[:size])


def _moved(code: bytes, delta: int, every: int = 3) -> bytes:
    """``code`` with the offset after every ``every``-th 0xE8 byte moved by ``delta``."""
    out = bytearray(code)
    seen = 0
    at = out.find(b"\xe8")
    while 0 <= at <= len(out) - 5:
        seen += 1
        if seen % every == 0:
            (value,) = struct.unpack_from("<i", out, at + 1)
            struct.pack_into("<i", out, at + 1, value + delta)
        at = out.find(b"\xe8", at + 5)
    return bytes(out)


def _round_trip_payload(view: bytes, new: bytes, covers: list[Cover]) -> bytes:
    payload = encode_add(view, new, covers)
    assert add.decode(view, payload, len(new)) == new
    return payload


# --- the payload on its own ---------------------------------------------------------


def test_hdiffpatch_covers_rebuild_the_span_with_add() -> None:
    rng = random.Random(20)
    view = _code_like(rng, 200_000)
    new = _moved(view[:50_000] + rng.randbytes(300) + view[50_000:], -240)
    covers = hdiff_covers(hdiffpatch.diff(view, new, "none", validate=False), len(view), len(new))
    assert covers
    payload = _round_trip_payload(view, new, covers)
    assert len(payload) < len(new) // 4


def test_carries_cross_bytes_and_covers() -> None:
    # 0xFF...FF + 1 carries through every byte and from one cover into the next.
    view = b"\xff" * 64 + b"\x00" * 64
    new = b"\x00" * 64 + b"\x01" + b"\x00" * 63
    payload = _round_trip_payload(view, new, [(0, 0, 40), (40, 40, 88)])
    # The whole difference is one digit: +1 at the lowest place.
    assert payload[:2] == b"\x02\x01"


def test_negative_differences_and_literals_round_trip() -> None:
    rng = random.Random(21)
    view = rng.randbytes(5000)
    new = bytearray(view[1000:4000])
    for at in range(0, len(new) - 4, 97):
        struct.pack_into("<I", new, at, (struct.unpack_from("<I", new, at)[0] - 300) % (1 << 32))
    new[1500:1600] = rng.randbytes(100)
    covers: list[Cover] = [(1000, 0, 1500), (2600, 1600, 1400)]
    _round_trip_payload(view, bytes(new), covers)


@pytest.mark.parametrize(
    ("view", "new", "covers"),
    [
        (b"abc", b"", []),
        (b"abc", b"only literals", []),
        (b"abcdef", b"abcdef", [(0, 0, 6)]),
        (b"abcdef", b"xabcdefx", [(0, 1, 6)]),
        (b"abcdef", b"defabc", [(3, 0, 3), (0, 3, 3)]),
    ],
    ids=["empty", "literals", "same", "inside", "backwards"],
)
def test_edge_cases_round_trip(view: bytes, new: bytes, covers: list[Cover]) -> None:
    _round_trip_payload(view, new, covers)


@settings(max_examples=60, deadline=None)
@given(
    view=st.binary(min_size=1, max_size=300),
    new=st.binary(max_size=300),
    cuts=st.lists(st.tuples(st.integers(0, 299), st.integers(0, 299)), max_size=8),
)
def test_any_valid_covers_round_trip(view: bytes, new: bytes, cuts: list[tuple[int, int]]) -> None:
    covers: list[Cover] = []
    end = 0
    for a, b in sorted(cuts):
        start, length = max(a, end), min(b % 40 + 1, len(view))
        if start + length > len(new):
            break
        covers.append((b % (len(view) - length + 1), start, length))
        end = start + length
    _round_trip_payload(view, new, covers)


def test_a_payload_that_is_not_hdiffpatch_gives_no_covers() -> None:
    assert hdiff_covers(b"BSDIFF40 not ours", 10, 10) is None
    diff = hdiffpatch.diff(b"a" * 100, b"a" * 50 + b"b" * 50, "none", validate=False)
    assert hdiff_covers(diff, 99, 100) is None  # sizes that are not the diff's
    assert hdiff_covers(diff[:12], 100, 100) is None  # truncated


# --- malformed payloads -------------------------------------------------------------


@pytest.fixture(scope="module")
def sample() -> tuple[bytes, bytes, bytes]:
    rng = random.Random(22)
    view = _code_like(rng, 20_000)
    new = _moved(view[:9_000] + rng.randbytes(700) + view[9_000:], 4096 + 16)
    covers = hdiff_covers(hdiffpatch.diff(view, new, "none", validate=False), len(view), len(new))
    assert covers
    return view, new, encode_add(view, new, covers)


def test_every_truncation_of_a_payload_is_corrupt(sample: tuple[bytes, bytes, bytes]) -> None:
    view, new, payload = sample
    for keep in [*range(0, 64), *range(64, len(payload), 37)]:
        with pytest.raises(CorruptDeltaError):
            add.decode(view, payload[:keep], len(new))


def test_flipped_payload_bytes_are_corrupt_or_change_only_the_span(
    sample: tuple[bytes, bytes, bytes],
) -> None:
    view, new, payload = sample
    rng = random.Random(23)
    for _ in range(300):
        damaged = bytearray(payload)
        damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
        try:
            out = add.decode(view, bytes(damaged), len(new))
        except CorruptDeltaError:
            continue
        assert len(out) == len(new)  # wrong bytes are caught by the result's SHA-256


def _payload(covers: list[tuple[int, int, int]], digits: bytes, literals: bytes, n: int) -> bytes:
    out = bytearray()
    add.write_varint(out, len(covers))
    add.write_varint(out, n)
    for delta, gap, length in covers:
        add.write_varint(out, add.zigzag(delta))
        add.write_varint(out, gap)
        add.write_varint(out, length)
    return bytes(out) + digits + literals


@pytest.mark.parametrize(
    ("payload", "length", "match"),
    [
        (_payload([(0, 0, 11)], b"", b"", 0), 10, "outside"),  # longer than the span
        (_payload([(5, 0, 6)], b"", b"", 0), 6, "outside"),  # past the view's end
        (_payload([(-1, 0, 4)], b"", b"", 0), 4, "outside"),  # before the view's start
        (_payload([(0, 0, 0)], b"", b"abcd", 0), 4, "outside"),  # empty cover
        (_payload([(0, 0, 4)], b"\x04\x01", b"", 1), 4, "outside"),  # digit past the covers
        (_payload([(0, 0, 4)], b"\x00\x01" * 5, b"", 5), 4, "too many digits"),
        (_payload([(0, 0, 4)], b"", b"xy", 0), 4, "literal"),  # literals left over
        (_payload([(0, 1, 4)], b"", b"", 0), 5, "literal"),  # literals missing
        (_payload([], b"", b"\x01" * 10, 0)[:1] + b"\xff" * 12, 10, "number"),
    ],
    ids=[
        "cover-past-span",
        "cover-past-view",
        "cover-before-view",
        "empty-cover",
        "digit-past-covers",
        "digit-count",
        "extra-literals",
        "missing-literals",
        "oversized-varint",
    ],
)
def test_malformed_payloads_are_corrupt(payload: bytes, length: int, match: str) -> None:
    with pytest.raises(CorruptDeltaError, match=match):
        add.decode(b"0123456789", payload, length)


def test_more_covers_than_the_limit_are_corrupt() -> None:
    count = bytearray()
    add.write_varint(count, MAX_ADD_COVERS + 1)
    add.write_varint(count, 0)
    with pytest.raises(CorruptDeltaError, match="too many covers"):
        add.decode(b"x" * 10, bytes(count) + b"\x00\x00\x01" * 10, MAX_ADD_COVERS + 1)


def test_an_add_must_read_the_source() -> None:
    with pytest.raises(ValueError, match="source extents"):
        check_operation(OP_ADD, 10, 0, 0, 5)
    op = Operation(OP_ADD, 10, (), bytes(32), b"\x00\x00" + b"x" * 10)
    with pytest.raises(ValueError, match="source extents"):
        encode_operation(op)
    ok = Operation(OP_ADD, 10, (Extent(0, 10),), bytes(32), b"\x00\x00" + b"x" * 10)
    assert encode_operation(ok)


def test_a_version_1_patch_is_refused_as_corrupt() -> None:
    body = HEADER.pack(MAGIC, 1, 0, 0, bytes(32), 0, bytes(32))
    stream = io.BytesIO(body + hashlib.sha256(body).digest() + bytes([TAG_END]) + bytes(32))
    with pytest.raises(CorruptDeltaError, match="version 1"):
        PatchReader(stream)


# --- through build_delta and apply_delta --------------------------------------------


@pytest.fixture
def moved_code(write: Write, tmp_path: Path, small_spans: int) -> tuple[Path, Path, Path]:
    rng = random.Random(24)
    old = _code_like(rng, 600_000)
    new = _moved(old[:200_000] + rng.randbytes(2_000) + old[200_000:], -240)
    source, target = write("source.img", old), write("target.img", new)
    return source, target, tmp_path / "delta.pld"


def test_moved_code_is_patched_with_add_and_round_trips(
    moved_code: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    source, target, patch = moved_code
    info = build_delta(source, target, patch)
    with patch.open("rb") as f:
        kinds = [op.kind for op in PatchReader(f).operations()]
    assert kinds.count(OP_ADD) >= len(kinds) - 1
    out = tmp_path / "out.img"
    apply_delta(
        source, patch, out, expected_sha256=info.target_sha256, expected_length=info.target_length
    )
    assert out.read_bytes() == target.read_bytes()
    assert info.patch_length < target.stat().st_size // 10


def test_a_wrong_source_under_an_add_is_a_source_mismatch(
    moved_code: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    source, target, patch = moved_code
    info = build_delta(source, target, patch)
    data = bytearray(source.read_bytes())
    data[400_000] ^= 0x10
    source.write_bytes(bytes(data))
    out = tmp_path / "out.img"
    with pytest.raises(DeltaSourceMismatchError):
        apply_delta(
            source,
            patch,
            out,
            expected_sha256=info.target_sha256,
            expected_length=info.target_length,
        )
    assert not out.exists()
    assert hashlib.sha256(target.read_bytes()).hexdigest() == info.target_sha256
