"""The on-disk patch format: a header, a sequence of operations, a trailer.

Layout (all integers little-endian)::

    header   MAGIC(8) version(u16) flags(u16) source_length(u64) source_sha256(32)
             target_length(u64) target_sha256(32) header_sha256(32)
    op *     kind(u8) codec(u8) extent_count(u16) target_length(u32) payload_length(u32)
             source_sha256(32) extents(extent_count * (offset u64, length u64))
             payload(payload_length) op_sha256(32)
    trailer  kind=END(u8) file_sha256(32)

Operations write the target sequentially. ``COPY`` copies its source extents; ``REPLACE``
carries the target bytes (raw or compressed by ``codec``); ``DIFF`` carries an HDiffPatch
diff of the target bytes against the concatenation of its source extents. ``source_sha256``
is the hash of the source bytes an operation reads (all zero when it reads none), so a
wrong source image is caught where it is read. ``op_sha256`` covers the whole operation
record, ``header_sha256`` the header, and ``file_sha256`` every byte before it. The limits
below bound what one operation can make the applier hold in memory.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from patchline.errors import CorruptDeltaError

MAGIC = b"PLDELTA\x00"
VERSION = 1

OP_END = 0
OP_COPY = 1
OP_REPLACE = 2
OP_DIFF = 3

CODEC_NONE = 0
CODEC_LZMA = 1

#: Largest target span one operation may produce.
MAX_OP_TARGET = 8 << 20
#: Largest total of source extents one operation may read.
MAX_OP_SOURCE = 40 << 20
#: Largest payload one operation may carry.
MAX_OP_PAYLOAD = MAX_OP_TARGET + (1 << 20)
#: Largest number of source extents in one operation.
MAX_OP_EXTENTS = 4096

_HEADER = struct.Struct("<8sHHQ32sQ32s")
_OP = struct.Struct("<BBHII32s")
_EXTENT = struct.Struct("<QQ")
_DIGEST = 32
NO_SOURCE = bytes(_DIGEST)


@dataclass(frozen=True)
class Header:
    """What a patch turns into what: both images' lengths and SHA-256 digests."""

    source_length: int
    source_sha256: bytes
    target_length: int
    target_sha256: bytes


@dataclass(frozen=True)
class Extent:
    """A byte range ``[offset, offset + length)`` of the source image."""

    offset: int
    length: int


@dataclass(frozen=True)
class Operation:
    """One step that appends ``target_length`` bytes to the output image."""

    kind: int
    codec: int
    target_length: int
    extents: tuple[Extent, ...]
    source_sha256: bytes
    payload: bytes

    @property
    def source_length(self) -> int:
        """Total number of source bytes the operation reads."""
        return sum(e.length for e in self.extents)


def encode_header(header: Header) -> bytes:
    """Serialise ``header`` with its own digest appended."""
    body = _HEADER.pack(
        MAGIC,
        VERSION,
        0,
        header.source_length,
        header.source_sha256,
        header.target_length,
        header.target_sha256,
    )
    return body + hashlib.sha256(body).digest()


def encode_operation(op: Operation) -> bytes:
    """Serialise ``op`` with its digest appended; raises ValueError past the format limits."""
    _check_limits(op.kind, op.target_length, len(op.extents), op.source_length, len(op.payload))
    parts = [
        _OP.pack(
            op.kind,
            op.codec,
            len(op.extents),
            op.target_length,
            len(op.payload),
            op.source_sha256,
        )
    ]
    parts.extend(_EXTENT.pack(e.offset, e.length) for e in op.extents)
    parts.append(op.payload)
    record = b"".join(parts)
    return record + hashlib.sha256(record).digest()


def encode_end(file_digest: bytes) -> bytes:
    """Serialise the trailer that closes a patch whose preceding bytes hash to ``file_digest``."""
    return bytes([OP_END]) + file_digest


def _check_limits(kind: int, target: int, extents: int, source: int, payload: int) -> None:
    if kind not in (OP_COPY, OP_REPLACE, OP_DIFF):
        raise ValueError(f"unknown operation kind {kind}")
    if target > MAX_OP_TARGET or source > MAX_OP_SOURCE or payload > MAX_OP_PAYLOAD:
        raise ValueError("operation exceeds the format's size limits")
    if extents > MAX_OP_EXTENTS:
        raise ValueError("operation has too many source extents")


class PatchReader:
    """Reads and checks a patch stream: the header first, then operations one at a time.

    Every check failure (bad magic, unknown version, digest mismatch, truncation, values out
    of range) raises CorruptDeltaError.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._hash = hashlib.sha256()
        raw = self._read(_HEADER.size + _DIGEST)
        body, digest = raw[: _HEADER.size], raw[_HEADER.size :]
        magic, version, _flags, s_len, s_sha, t_len, t_sha = _HEADER.unpack(body)
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
        """Yield each verified operation in order; return after a verified trailer."""
        while True:
            kind_byte = self._stream.read(1)
            if len(kind_byte) != 1:
                raise CorruptDeltaError("the delta is truncated (no trailer)")
            if kind_byte[0] == OP_END:
                expected = self._hash.digest()
                digest = self._stream.read(_DIGEST)
                if digest != expected:
                    raise CorruptDeltaError("the delta fails its whole-file checksum")
                if self._stream.read(1):
                    raise CorruptDeltaError("the delta has bytes after its trailer")
                return
            self._hash.update(kind_byte)
            yield self._read_operation(kind_byte)

    def _read_operation(self, kind_byte: bytes) -> Operation:
        fixed = kind_byte + self._read(_OP.size - 1)
        kind, codec, n_ext, t_len, p_len, src_sha = _OP.unpack(fixed)
        if n_ext > MAX_OP_EXTENTS or t_len > MAX_OP_TARGET or p_len > MAX_OP_PAYLOAD:
            raise CorruptDeltaError("a delta operation exceeds the format's limits")
        ext_raw = self._read(n_ext * _EXTENT.size)
        payload = self._read(p_len)
        digest = self._read(_DIGEST)
        if hashlib.sha256(fixed + ext_raw + payload).digest() != digest:
            raise CorruptDeltaError("a delta operation fails its checksum")
        extents = tuple(
            Extent(*_EXTENT.unpack_from(ext_raw, i * _EXTENT.size)) for i in range(n_ext)
        )
        try:
            _check_limits(kind, t_len, n_ext, sum(e.length for e in extents), p_len)
        except ValueError as exc:
            raise CorruptDeltaError(f"a delta operation is malformed: {exc}") from None
        return Operation(kind, codec, t_len, extents, src_sha, payload)


def read_header(stream: BinaryIO) -> Header:
    """Return the checked header of the patch ``stream`` (read from its current position)."""
    return PatchReader(stream).header
