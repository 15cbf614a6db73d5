"""The ``ADD`` operation's payload: aligned source ranges plus their byte differences.

An ``ADD`` rebuilds a target span from its source view (the concatenation of its extents)
the way bsdiff does, but with another encoding of the differences. The span is cut into
*covers*, each a target range aligned with a range of the view, and the uncovered bytes
between them (the *literals*). Let ``old`` be the concatenation of the covers' view ranges
and ``new`` that of their target ranges, both read as little-endian integers: the payload
carries ``new - old`` (modulo 256**len) as balanced base-256 digits in [-128, 127], and
only the nonzero ones with the count of zero digits before each. Carries propagate, so a
pointer that moved by a constant gives the same one or two digits wherever it occurs,
whatever the bytes it is added to; in compiled code most digits are zero. Layout, all
integers LEB128 varints unless noted::

    cover_count  digit_count
    covers   cover_count * (zigzag(view_pos - previous view end),
                            target_pos - previous target end, length >= 1)
    digits   digit_count * (zero digits skipped, digit (u8, two's complement, nonzero))
    literals the uncovered target bytes, in order, to the end of the payload

This module is the device side: standard library only.
"""

from __future__ import annotations

from patchline.delta.format import MAX_ADD_COVERS
from patchline.errors import CorruptDeltaError

#: Covered bytes added per big-integer step while applying (bounds the temporaries).
_STEP = 1 << 20
# A digit d is stored as d mod 256. The applier keeps d + 128 (that is, the stored byte xor
# 0x80) in a dense buffer that starts as 0x80 bytes (digit zero), adds it as one integer and
# subtracts the bias 0x8080...80 once per step.
_BIAS = b"\x80" * _STEP


def read_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode the LEB128 varint at ``buf[pos]``; return ``(value, next_pos)``."""
    value = shift = 0
    while True:
        try:
            byte = buf[pos]
        except IndexError:
            raise CorruptDeltaError("an ADD payload ends inside a number") from None
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise CorruptDeltaError("an ADD payload holds an oversized number")


def write_varint(out: bytearray, value: int) -> None:
    """Append ``value`` (non-negative) as a LEB128 varint."""
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def zigzag(value: int) -> int:
    """Map a signed integer to a non-negative one (0, -1, 1, -2 -> 0, 1, 2, 3)."""
    return value << 1 if value >= 0 else ((-value) << 1) - 1


def unzigzag(value: int) -> int:
    """Inverse of :func:`zigzag`."""
    return value >> 1 if not value & 1 else -((value + 1) >> 1)


def decode(view: bytes, payload: bytes, length: int) -> bytes:
    """Rebuild the ``length``-byte target span from ``view`` and an ADD ``payload``.

    Raises CorruptDeltaError if the payload is malformed or does not describe exactly
    ``length`` bytes.
    """
    buf = memoryview(payload)
    n_covers, pos = read_varint(buf, 0)
    n_digits, pos = read_varint(buf, pos)
    if n_covers > MAX_ADD_COVERS or n_covers > length:
        raise CorruptDeltaError("an ADD payload has too many covers")
    covers, covered, pos = _read_covers(buf, pos, n_covers, len(view), length)
    if n_digits > covered or 2 * n_digits > len(buf) - pos:
        raise CorruptDeltaError("an ADD payload has too many digits")
    digits, pos = _read_digits(buf, pos, n_digits, covered)
    if len(buf) - pos != length - covered:
        raise CorruptDeltaError("an ADD payload's literal bytes do not fill its span")
    return _assemble(view, covers, digits, buf[pos:])


def _read_covers(
    buf: memoryview, pos: int, count: int, view_length: int, length: int
) -> tuple[list[tuple[int, int, int]], int, int]:
    """Parse ``count`` covers as ``(view_pos, gap_before, length)``; check every bound."""
    covers: list[tuple[int, int, int]] = []
    view_end = target_end = covered = 0
    for _ in range(count):
        delta, pos = read_varint(buf, pos)
        gap, pos = read_varint(buf, pos)
        size, pos = read_varint(buf, pos)
        start = view_end + unzigzag(delta)
        target_end += gap + size
        if size < 1 or start < 0 or start + size > view_length or target_end > length:
            raise CorruptDeltaError("an ADD cover lies outside its source view or span")
        covers.append((start, gap, size))
        view_end = start + size
        covered += size
    return covers, covered, pos


def _read_digits(buf: memoryview, pos: int, count: int, covered: int) -> tuple[bytearray, int]:
    """The dense digit buffer (each digit xor 0x80) of the ``covered`` bytes."""
    dense = bytearray(b"\x80") * covered
    at = -1
    try:
        for _ in range(count):
            gap = buf[pos]
            pos += 1
            if gap >= 0x80:
                gap, pos = read_varint(buf, pos - 1)
            at += gap + 1
            dense[at] = buf[pos] ^ 0x80
            pos += 1
    except IndexError:
        raise CorruptDeltaError("an ADD digit lies outside its covers or payload") from None
    return dense, pos


def _assemble(
    view: bytes, covers: list[tuple[int, int, int]], digits: bytearray, literals: memoryview
) -> bytes:
    """Interleave the literals with each cover's view bytes plus its digits, carries and all."""
    source = memoryview(view)
    dense = memoryview(digits)
    parts: list[bytes | memoryview] = []
    carry = 0
    lit = done = 0
    for start, gap, size in covers:
        if gap:
            parts.append(literals[lit : lit + gap])
            lit += gap
        for offset in range(0, size, _STEP):
            n = min(_STEP, size - offset)
            value = (
                int.from_bytes(source[start + offset : start + offset + n], "little")
                + int.from_bytes(dense[done : done + n], "little")
                - int.from_bytes(_BIAS[:n], "little")
                + carry
            )
            carry = value >> (8 * n)
            parts.append((value & ((1 << (8 * n)) - 1)).to_bytes(n, "little"))
            done += n
    parts.append(literals[lit:])
    return b"".join(parts)
