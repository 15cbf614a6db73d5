"""Finding, for each span of the target image, the source ranges its content comes from.

Both images are sampled at content-defined anchors: positions whose first 8 bytes hash to
a value with its top bits clear; an anchor's key is the hash of the 32 bytes there. Because
the choice depends only on the bytes, an insertion or deletion shifts the anchors along
with the content instead of destroying them. An anchor hash seen exactly once in the
source and again in the target is a match; the source ranges dense with matches for a
target span become that span's source extents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from patchline.delta.format import Extent

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

_WINDOW = 32
_SELECT_MULTIPLIER = np.uint64(0xFF51AFD7ED558CCD)
_SELECT_BELOW = np.uint64(1 << (64 - 7))  # one anchor per 128 random bytes
_BLOCK = 8 << 20
_MULTIPLIERS = (
    np.uint64(0x9E3779B97F4A7C15),
    np.uint64(0xC2B2AE3D27D4EB4F),
    np.uint64(0x165667B19E3779F9),
    np.uint64(0xD6E8FEB86659FD93),
)


@dataclass(frozen=True)
class Anchors:
    """Sampled window hashes of one image and the offsets where they occur."""

    keys: U64
    positions: I64


def sample_anchors(data: memoryview) -> Anchors:
    """Return the content-defined anchors of ``data`` (deterministic for given bytes)."""
    view = data
    total = len(view)
    keys: list[U64] = []
    positions: list[I64] = []
    start = 0
    while start + _WINDOW <= total:
        stop = min(total, start + _BLOCK + _WINDOW - 1)
        k, p = _sample_block(view[start:stop])
        keys.append(k)
        positions.append(p + start)
        start += _BLOCK
    if not keys:
        return Anchors(np.empty(0, np.uint64), np.empty(0, np.int64))
    return Anchors(np.concatenate(keys), np.concatenate(positions))


def _sample_block(block: memoryview) -> tuple[U64, I64]:
    count = len(block) - _WINDOW + 1
    buf = np.frombuffer(block, dtype=np.uint8)
    # Choose anchors by the first 8 bytes of the window (copying the unaligned view first
    # is far faster than computing on it), then hash the whole window at the chosen few.
    lead = np.ndarray(shape=(count,), dtype="<u8", buffer=buf, strides=(1,)).copy()
    lead *= _SELECT_MULTIPLIER
    selected = np.flatnonzero(lead < _SELECT_BELOW)
    del lead
    keys = np.zeros(len(selected), dtype=np.uint64)
    for i, mul in enumerate(_MULTIPLIERS):
        words = np.ndarray(shape=(count,), dtype="<u8", buffer=buf, offset=8 * i, strides=(1,))
        keys ^= words[selected] * mul
        keys ^= keys >> np.uint64(29)
    # A run of equal windows (zeros, padding) would yield one anchor per byte; keep the first.
    if len(keys) > 1:
        fresh = np.empty(len(keys), dtype=bool)
        fresh[0] = True
        fresh[1:] = keys[1:] != keys[:-1]
        selected, keys = selected[fresh], keys[fresh]
    return keys, selected.astype(np.int64)


@dataclass(frozen=True)
class SourceIndex:
    """The source anchors whose hash occurs exactly once, sorted by hash."""

    keys: U64
    positions: I64

    @classmethod
    def build(cls, anchors: Anchors) -> SourceIndex:
        """Index ``anchors``, dropping hashes that occur more than once (ambiguous)."""
        order = np.argsort(anchors.keys, kind="stable")
        keys = anchors.keys[order]
        positions = anchors.positions[order]
        if len(keys) == 0:
            return cls(keys, positions)
        unique = np.ones(len(keys), dtype=bool)
        same = keys[1:] == keys[:-1]
        unique[1:] &= ~same
        unique[:-1] &= ~same
        return cls(keys[unique], positions[unique])

    def match(self, anchors: Anchors) -> tuple[I64, I64]:
        """Return ``(target_positions, source_positions)`` of the anchors found in the index."""
        if len(self.keys) == 0 or len(anchors.keys) == 0:
            empty = np.empty(0, np.int64)
            return empty, empty
        order = np.argsort(anchors.keys)  # sorted queries search far faster
        keys = anchors.keys[order]
        idx = np.searchsorted(self.keys, keys)
        idx[idx == len(self.keys)] = 0
        hit = self.keys[idx] == keys
        t_pos, s_pos = anchors.positions[order[hit]], self.positions[idx[hit]]
        by_target = np.argsort(t_pos)
        return t_pos[by_target], s_pos[by_target]


def plan_extents(
    target_positions: I64,
    source_positions: I64,
    span: tuple[int, int],
    source_length: int,
    *,
    budget: int,
    min_votes: int = 4,
) -> tuple[Extent, ...]:
    """Choose source extents, at most ``budget`` bytes in all, for the target ``span``.

    The span's matched anchors vote for a shift (source offset minus target offset, in
    steps of an eighth of the span). A shift that carries at least 40% of the votes contributes the
    whole span moved by that shift, so the bytes between exact matches (edited code, moved
    pointers) are there for the differ too; a minor shift contributes only the source
    range its anchors cover. Ranges are widened by 1/32 of the span and taken in order of votes
    while they fit the budget. Extents come back sorted by offset and do not overlap.
    """
    if len(source_positions) == 0:
        return ()
    lo, hi = span
    quantum = max(4096, (hi - lo) // 8)
    margin = (hi - lo) // 32
    shifts = source_positions - target_positions
    _, inverse, votes = np.unique(shifts // quantum, return_inverse=True, return_counts=True)
    total = len(shifts)
    chosen: list[tuple[int, int]] = []
    for b in np.argsort(-votes, kind="stable")[:64].tolist():
        if votes[b] < min_votes:
            break
        members = inverse == b
        if votes[b] * 5 >= total * 2:
            d = shifts[members]
            start, stop = lo + int(d.min()) - margin, hi + int(d.max()) + margin
        else:
            s = source_positions[members]
            start, stop = int(s.min()) - margin, int(s.max()) + _WINDOW + margin
        candidate = _merge([*chosen, (max(0, start), min(source_length, stop))])
        if sum(b - a for a, b in candidate) <= budget:
            chosen = candidate
    return tuple(Extent(a, b - a) for a, b in chosen if b > a)


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def span_matches(t_pos: I64, s_pos: I64, span: tuple[int, int]) -> tuple[I64, I64]:
    """The matches (sorted by target position) whose target position lies in ``span``."""
    a, b = np.searchsorted(t_pos, span)
    return t_pos[a:b], s_pos[a:b]


def main_shift(t_pos: I64, s_pos: I64) -> int | None:
    """The most common shift (source minus target offset) among matches, if any."""
    if len(t_pos) == 0:
        return None
    shifts, counts = np.unique(s_pos - t_pos, return_counts=True)
    return int(shifts[np.argmax(counts)])
