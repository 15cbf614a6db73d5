"""Building ``ADD`` payloads (server side, numpy): covers from HDiffPatch, digits, literals.

HDiffPatch's diff of a span against its view already holds the alignment an ``ADD`` needs:
its *covers*, target ranges matched (approximately: it extends exact matches while most
bytes agree) to view ranges. Its uncompressed output lists them first, in its own
documented patch format (``HDIFF13``); :func:`hdiff_covers` reads them back. What differs
is the encoding of the bytes that differ inside covers: HDiffPatch run-length codes the
byte-wise difference; an ``ADD`` carries the carry-propagating difference as sparse
base-256 digits, which LZMA2 compresses much better on moved code (see docs/delta.md).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from patchline.delta.add import write_varint, zigzag
from patchline.delta.format import MAX_ADD_COVERS

Cover = tuple[int, int, int]  # (view offset, target offset, length)

_HDIFF_MAGIC = b"HDIFF13&\x00"  # format version, "&", compression type "" (none), NUL
_HDIFF_HEAD_FIELDS = 11


def _unpack(buf: bytes, pos: int, tag_bits: int = 0) -> tuple[int, int, int]:
    """HDiffPatch's packed unsigned integer (big-endian 7-bit groups, optional high tag)."""
    code = buf[pos]
    pos += 1
    tag = code >> (8 - tag_bits) if tag_bits else 0
    value = code & ((1 << (7 - tag_bits)) - 1)
    if code & (1 << (7 - tag_bits)):
        while True:
            code = buf[pos]
            pos += 1
            value = (value << 7) | (code & 0x7F)
            if code < 0x80:
                break
    return value, tag, pos


def hdiff_covers(payload: bytes, view_length: int, target_length: int) -> list[Cover] | None:
    """The covers of an uncompressed HDiffPatch diff, or None if it is not one we can read.

    Covers come back in target order, non-overlapping and inside both inputs.
    """
    if not payload.startswith(_HDIFF_MAGIC):
        return None
    try:
        pos = len(_HDIFF_MAGIC)
        head = []
        for _ in range(_HDIFF_HEAD_FIELDS):
            value, _tag, pos = _unpack(payload, pos)
            head.append(value)
        new_size, old_size, count = head[0], head[1], head[2]
        if new_size != target_length or old_size != view_length or count > MAX_ADD_COVERS:
            return None
        covers: list[Cover] = []
        old_end = new_end = 0
        for _ in range(count):
            step, back, pos = _unpack(payload, pos, 1)
            gap, _tag, pos = _unpack(payload, pos)
            length, _tag, pos = _unpack(payload, pos)
            old = old_end - step if back else old_end + step
            new = new_end + gap
            if length < 1 or old < 0 or old + length > view_length or new + length > new_size:
                return None
            covers.append((old, new, length))
            old_end, new_end = old + length, new + length
    except IndexError:
        return None
    return covers


def encode_add(view: bytes, new: bytes, covers: list[Cover]) -> bytes:
    """The ADD payload that rebuilds ``new`` from ``view`` with ``covers``."""
    head = bytearray()
    literals: list[bytes] = []
    view_end = target_end = 0
    for old, start, length in covers:
        write_varint(head, zigzag(old - view_end))
        write_varint(head, start - target_end)
        write_varint(head, length)
        literals.append(new[target_end:start])
        view_end, target_end = old + length, start + length
    literals.append(new[target_end:])
    digits = _sparse_digits(
        b"".join(view[o : o + n] for o, _s, n in covers),
        b"".join(new[s : s + n] for _o, s, n in covers),
    )
    count = bytearray()
    write_varint(count, len(covers))
    write_varint(count, digits[1])
    return bytes(count) + bytes(head) + digits[0] + b"".join(literals)


def _sparse_digits(old: bytes, new: bytes) -> tuple[bytes, int]:
    """``new - old`` as (zero-run varint, digit) pairs of its nonzero balanced digits."""
    size = len(new)
    if size == 0:
        return b"", 0
    mask = (1 << (8 * size)) - 1
    bias = int.from_bytes(b"\x80" * size, "little")
    # Adding 0x80 to every place then subtracting it from every byte gives digits in
    # [-128, 127] whose weighted sum is the difference (two's complement, mod 256**size).
    difference = (int.from_bytes(new, "little") - int.from_bytes(old, "little") + bias) & mask
    digits = np.frombuffer(difference.to_bytes(size, "little"), dtype=np.uint8) ^ np.uint8(0x80)
    places = np.flatnonzero(digits)
    gaps = np.diff(places, prepend=-1) - 1
    return _interleave(gaps, digits[places]), len(places)


def _interleave(gaps: npt.NDArray[np.int64], values: npt.NDArray[np.uint8]) -> bytes:
    """LEB128(gap) then the value byte, for each pair, vectorised."""
    if len(gaps) == 0:
        return b""
    wide = gaps.astype(np.uint64)
    sizes = np.ones(len(wide), dtype=np.int64)
    k = 1
    while True:
        more = wide >= np.uint64(1 << (7 * k))
        if not more.any():
            break
        sizes += more
        k += 1
    ends = np.cumsum(sizes + 1)
    starts = ends - sizes - 1
    out = np.empty(int(ends[-1]), dtype=np.uint8)
    for i in range(k):
        sel = sizes > i
        group = (wide[sel] >> np.uint64(7 * i)) & np.uint64(0x7F)
        group |= np.where(sizes[sel] > i + 1, np.uint64(0x80), np.uint64(0))
        out[starts[sel] + i] = group.astype(np.uint8)
    out[ends - 1] = values
    return out.tobytes()
