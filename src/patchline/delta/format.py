"""The on-disk patch format: a header, frames of operations, a trailer.

Layout (all integers little-endian)::

    header   MAGIC(8) version(u16) flags(u16) source_length(u64) source_sha256(32)
             target_length(u64) target_sha256(32) header_sha256(32)
    frame *  tag=FRAME(u8) codec(u8) raw_length(u32) packed_length(u32)
             packed(packed_length) frame_sha256(32)
    trailer  tag=END(u8) file_sha256(32)

A frame's packed bytes decode (``codec``: stored or raw LZMA2) to ``raw_length`` bytes that
hold whole operation records, one after another::

    op       kind(u8) extent_count(u16) target_length(u32) payload_length(u32)
             source_sha256(32) extents(extent_count * (offset u64, length u64))
             payload(payload_length)

Operations write the target sequentially. ``COPY`` copies its source extents; ``REPLACE``
carries the target bytes; ``DIFF`` carries an uncompressed HDiffPatch diff of the target
bytes against the concatenation of its source extents (its *view*); ``ADD`` carries covers
that align target ranges with view ranges, the byte differences over them as sparse
base-256 digits, and the uncovered bytes (``patchline.delta.add``). The frame compresses
payloads together with their neighbours. ``source_sha256`` is the hash of the source
bytes an operation reads (all zero when it reads none), so a wrong source image is caught
where it is read.
``frame_sha256`` covers the frame from its tag, ``header_sha256`` the header, and
``file_sha256`` every byte before the trailer. The limits below bound what one frame or
operation can make the applier hold in memory.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

MAGIC = b"PLDELTA\x00"
VERSION = 2

TAG_END = 0
TAG_FRAME = 1

OP_COPY = 1
OP_REPLACE = 2
OP_DIFF = 3
OP_ADD = 4

CODEC_NONE = 0
CODEC_LZMA = 1

#: Largest target span one operation may produce.
MAX_OP_TARGET = 8 << 20
#: Largest total of source extents one operation may read.
MAX_OP_SOURCE = 16 << 20
#: Largest payload one operation may carry.
MAX_OP_PAYLOAD = MAX_OP_TARGET + (1 << 20)
#: Largest number of source extents in one operation.
MAX_OP_EXTENTS = 4096
#: Largest number of covers in one ADD operation.
MAX_ADD_COVERS = 1 << 16
#: Largest decoded size of one frame.
MAX_FRAME_RAW = MAX_OP_PAYLOAD + (1 << 20)

HEADER = struct.Struct("<8sHHQ32sQ32s")
FRAME = struct.Struct("<BBII")
OP = struct.Struct("<BHII32s")
EXTENT = struct.Struct("<QQ")
DIGEST_SIZE = 32
NO_SOURCE = bytes(DIGEST_SIZE)


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
    body = HEADER.pack(
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
    """Serialise ``op`` as a record; raises ValueError past the format's limits."""
    check_operation(op.kind, op.target_length, len(op.extents), op.source_length, len(op.payload))
    head = OP.pack(op.kind, len(op.extents), op.target_length, len(op.payload), op.source_sha256)
    extents = b"".join(EXTENT.pack(e.offset, e.length) for e in op.extents)
    return head + extents + op.payload


def encode_frame(codec: int, raw_length: int, packed: bytes) -> bytes:
    """Serialise a frame whose ``packed`` bytes decode to ``raw_length`` bytes of records."""
    if raw_length > MAX_FRAME_RAW or codec not in (CODEC_NONE, CODEC_LZMA):
        raise ValueError("frame exceeds the format's limits")
    body = FRAME.pack(TAG_FRAME, codec, raw_length, len(packed)) + packed
    return body + hashlib.sha256(body).digest()


def encode_end(file_digest: bytes) -> bytes:
    """Serialise the trailer that closes a patch whose preceding bytes hash to ``file_digest``."""
    return bytes([TAG_END]) + file_digest


def check_operation(kind: int, target: int, extents: int, source: int, payload: int) -> None:
    """Raise ValueError unless an operation with these sizes is within the format's limits."""
    if kind not in (OP_COPY, OP_REPLACE, OP_DIFF, OP_ADD):
        raise ValueError(f"unknown operation kind {kind}")
    if target > MAX_OP_TARGET or source > MAX_OP_SOURCE or payload > MAX_OP_PAYLOAD:
        raise ValueError("operation exceeds the format's size limits")
    if extents > MAX_OP_EXTENTS:
        raise ValueError("operation has too many source extents")
    if kind == OP_COPY and (source != target or payload):
        raise ValueError("a COPY must read exactly as many bytes as it writes")
    if kind == OP_REPLACE and (extents or payload != target):
        raise ValueError("a REPLACE must carry exactly the bytes it writes")
    if kind in (OP_DIFF, OP_ADD) and not extents:
        raise ValueError("a DIFF or ADD must read source extents")
