"""The hashing writer puts every byte on disk and through the hash, in order, whether
chunks are block-aligned (O_DIRECT) or not, and reports a failed write."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from patchline.agent.sink import ALIGN, HashingWriter, open_direct


def write_through(path: Path, data: bytes, offset: int, sizes: list[int]) -> str:
    digest = hashlib.sha256()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    direct = open_direct(path)
    try:
        with HashingWriter(fd, [digest], offset, direct_fd=direct, slots=3) as sink:
            done = 0
            for size in sizes:
                buffer = sink.buffer()
                buffer[:size] = data[done : done + size]
                sink.commit(size)
                done += size
    finally:
        os.close(fd)
        if direct is not None:
            os.close(direct)
    return digest.hexdigest()


def test_aligned_and_unaligned_chunks_land_in_order_after_the_prefix(tmp_path: Path) -> None:
    prefix = b"p" * 1000
    data = os.urandom(ALIGN * 40 + 123)
    sizes = [ALIGN - 1000, ALIGN * 16, ALIGN * 16, 7 * ALIGN + 1000 + 123]
    assert sum(sizes) == len(data)
    path = tmp_path / "staging"
    path.write_bytes(prefix)

    digest = write_through(path, data, len(prefix), sizes)

    assert path.read_bytes() == prefix + data
    assert digest == hashlib.sha256(data).hexdigest()


def fill(sink: HashingWriter, times: int) -> None:
    with sink:
        for _ in range(times):
            sink.buffer()[:10] = b"0123456789"
            sink.commit(10)


def test_a_failed_write_is_raised_to_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "staging"
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)  # writes fail with EBADF
    try:
        sink = HashingWriter(fd, [hashlib.sha256()], 0, slots=2)
        with pytest.raises(OSError, match="Bad file descriptor"):
            fill(sink, 4)
    finally:
        os.close(fd)
