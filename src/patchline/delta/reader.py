"""Reading a patch stream: the checked header, then checked operations one at a time."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import BinaryIO

from patchline.delta import codecs
from patchline.delta.format import (
    DIGEST_SIZE,
    EXTENT,
    FRAME,
    HEADER,
    MAGIC,
    MAX_FRAME_RAW,
    MAX_OP_EXTENTS,
    OP,
    TAG_END,
    TAG_FRAME,
    VERSION,
    Extent,
    Header,
    Operation,
    check_operation,
)
from patchline.errors import CorruptDeltaError


class PatchReader:
    """Reads and checks a patch stream, holding at most one frame in memory.

    Every check failure (bad magic, unknown version, digest mismatch, truncation, values out
    of range) raises CorruptDeltaError.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._hash = hashlib.sha256()
        raw = self._read(HEADER.size + DIGEST_SIZE)
        body, digest = raw[: HEADER.size], raw[HEADER.size :]
        magic, version, _flags, s_len, s_sha, t_len, t_sha = HEADER.unpack(body)
        if magic != MAGIC:
            raise CorruptDeltaError("not a Patchline delta (bad magic bytes)")
        if version != VERSION:
            raise CorruptDeltaError(
                f"unsupported delta format version {version} (this build reads {VERSION})",
                hint="update the agent, or publish a delta in a format it reads",
            )
        if hashlib.sha256(body).digest() != digest:
            raise CorruptDeltaError("the delta header fails its checksum")
        self.header = Header(s_len, s_sha, t_len, t_sha)

    def _read(self, n: int) -> bytes:
        data = self._stream.read(n)
        if len(data) != n:
            raise CorruptDeltaError("the delta is truncated")
        self._hash.update(data)
        return data

    def operations(self) -> Iterator[Operation]:
        """Yield each operation in order; return after a verified trailer."""
        while True:
            tag = self._stream.read(1)
            if len(tag) != 1:
                raise CorruptDeltaError("the delta is truncated (no trailer)")
            if tag[0] == TAG_END:
                self._check_trailer()
                return
            if tag[0] != TAG_FRAME:
                raise CorruptDeltaError(f"unknown delta block tag {tag[0]}")
            self._hash.update(tag)
            yield from _records(self._read_frame(tag))

    def _check_trailer(self) -> None:
        if self._stream.read(DIGEST_SIZE) != self._hash.digest():
            raise CorruptDeltaError("the delta fails its whole-file checksum")
        if self._stream.read(1):
            raise CorruptDeltaError("the delta has bytes after its trailer")

    def _read_frame(self, tag: bytes) -> bytes:
        fixed = tag + self._read(FRAME.size - 1)
        _tag, codec, raw_length, packed_length = FRAME.unpack(fixed)
        if raw_length > MAX_FRAME_RAW or packed_length > MAX_FRAME_RAW + (1 << 20):
            raise CorruptDeltaError("a delta frame exceeds the format's limits")
        packed = self._read(packed_length)
        if hashlib.sha256(fixed + packed).digest() != self._read(DIGEST_SIZE):
            raise CorruptDeltaError("a delta frame fails its checksum")
        return codecs.expand(codec, packed, raw_length)


def _records(raw: bytes) -> Iterator[Operation]:
    view = memoryview(raw)
    pos = 0
    while pos < len(view):
        if pos + OP.size > len(view):
            raise CorruptDeltaError("a delta frame ends inside an operation")
        kind, n_ext, t_len, p_len, src_sha = OP.unpack_from(view, pos)
        pos += OP.size
        if n_ext > MAX_OP_EXTENTS or pos + n_ext * EXTENT.size + p_len > len(view):
            raise CorruptDeltaError("a delta frame ends inside an operation")
        extents = tuple(
            Extent(*EXTENT.unpack_from(view, pos + i * EXTENT.size)) for i in range(n_ext)
        )
        pos += n_ext * EXTENT.size
        payload = bytes(view[pos : pos + p_len])
        pos += p_len
        try:
            check_operation(kind, t_len, n_ext, sum(e.length for e in extents), p_len)
        except ValueError as exc:
            raise CorruptDeltaError(f"a delta operation is malformed: {exc}") from None
        yield Operation(kind, t_len, extents, bytes(src_sha), payload)


def read_header(stream: BinaryIO) -> Header:
    """Return the checked header of the patch ``stream`` (read from its current position)."""
    return PatchReader(stream).header
