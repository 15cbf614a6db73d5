"""Building a delta: plan one operation per target span, encode them, write the patch."""

from __future__ import annotations

import hashlib
import mmap
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from patchline.delta import codecs
from patchline.delta.format import (
    MAX_FRAME_RAW,
    MAX_OP_PAYLOAD,
    MAX_OP_SOURCE,
    MAX_OP_TARGET,
    NO_SOURCE,
    OP_ADD,
    OP_COPY,
    OP_DIFF,
    OP_REPLACE,
    Extent,
    Header,
    Operation,
    encode_end,
    encode_frame,
    encode_header,
    encode_operation,
)
from patchline.delta.info import DeltaInfo
from patchline.errors import DeltaError

if TYPE_CHECKING:
    from patchline.delta.matching import I64

Progress = Callable[[int, int], None]

#: Target bytes per operation.
SPAN = MAX_OP_TARGET
#: Source bytes one DIFF operation may read.
SOURCE_BUDGET = SPAN + SPAN // 4


def build_delta(
    source: Path,
    target: Path,
    out: Path,
    *,
    progress: Progress | None = None,
) -> DeltaInfo:
    """Write to ``out`` a patch that turns ``source`` into ``target``, and describe it.

    The patch is deterministic for given inputs. ``out`` appears only when complete (it is
    written under a temporary name in the same directory and renamed). ``progress`` is
    called with ``(target_bytes_done, target_bytes_total)`` after each operation. Raises
    DeltaError if an input cannot be read or the patch cannot be written.
    """
    try:
        with ExitStack() as stack:
            src = _map(stack, source)
            tgt = _map(stack, target)
            return _build(src, tgt, out, progress)
    except OSError as exc:
        raise DeltaError(f"cannot build a delta from {source} to {target}: {exc}") from exc


def _map(stack: ExitStack, path: Path) -> bytes | mmap.mmap:
    f = stack.enter_context(path.open("rb"))
    if os.fstat(f.fileno()).st_size == 0:
        return b""
    return stack.enter_context(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))


def _build(
    src: bytes | mmap.mmap, tgt: bytes | mmap.mmap, out: Path, progress: Progress | None
) -> DeltaInfo:
    # Imported here so that applying a delta (on a device) never needs numpy.
    from patchline.delta.matching import SourceIndex, sample_anchors, span_matches

    header = Header(len(src), hashlib.sha256(src).digest(), len(tgt), hashlib.sha256(tgt).digest())
    with ThreadPoolExecutor(max_workers=2) as pool:
        src_anchors, tgt_anchors = pool.map(sample_anchors, (memoryview(src), memoryview(tgt)))
    t_pos, s_pos = SourceIndex.build(src_anchors).match(tgt_anchors)
    spans = [(start, min(len(tgt), start + SPAN)) for start in range(0, len(tgt), SPAN)]

    def plan(span: tuple[int, int]) -> bytes:
        lo, hi = span
        return encode_operation(_plan_span(src, tgt, lo, hi, *span_matches(t_pos, s_pos, span)))

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            file_hash = hashlib.sha256()
            length = _write(f, file_hash, encode_header(header))
            workers = min(2, os.cpu_count() or 1)
            with ThreadPoolExecutor(max_workers=workers) as pool:
                records = _ordered(pool, plan, spans, workers * 2)
                frames = _frames(
                    pool, zip(spans, records, strict=True), workers, progress, len(tgt)
                )
                for frame in frames:
                    length += _write(f, file_hash, frame)
            length += _write(f, hashlib.sha256(), encode_end(file_hash.digest()))
            f.flush()
            os.fsync(f.fileno())
        patch_sha = _sha256_file(tmp)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return DeltaInfo(
        source_sha256=header.source_sha256.hex(),
        source_length=header.source_length,
        target_sha256=header.target_sha256.hex(),
        target_length=header.target_length,
        patch_sha256=patch_sha,
        patch_length=length,
    )


def _ordered(
    pool: ThreadPoolExecutor,
    fn: Callable[[tuple[int, int]], bytes],
    items: list[tuple[int, int]],
    ahead: int,
) -> Iterator[bytes]:
    """Like ``pool.map`` but with at most ``ahead`` results pending, to bound memory."""
    pending: deque[Future[bytes]] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _frames(
    pool: ThreadPoolExecutor,
    records: Iterable[tuple[tuple[int, int], bytes]],
    ahead: int,
    progress: Progress | None,
    total: int,
) -> Iterator[bytes]:
    """Group records into frames of at most MAX_FRAME_RAW bytes, compressed on ``pool``."""
    pending: deque[Future[bytes]] = deque()
    batch: list[bytes] = []
    size = 0

    def flush() -> None:
        raw = b"".join(batch)
        pending.append(pool.submit(_pack, raw))
        batch.clear()

    for (_lo, hi), record in records:
        if batch and size + len(record) > MAX_FRAME_RAW:
            flush()
            size = 0
        batch.append(record)
        size += len(record)
        if progress is not None:
            progress(hi, total)
        while len(pending) > ahead:
            yield pending.popleft().result()
    if batch:
        flush()
    while pending:
        yield pending.popleft().result()


def _pack(raw: bytes) -> bytes:
    codec, packed = codecs.compress(raw)
    return encode_frame(codec, len(raw), packed)


def _write(f: BinaryIO, file_hash: hashlib._Hash, data: bytes) -> int:
    f.write(data)
    file_hash.update(data)
    return len(data)


def _sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _plan_span(
    src: bytes | mmap.mmap,
    tgt: bytes | mmap.mmap,
    lo: int,
    hi: int,
    t_pos: I64,
    s_pos: I64,
) -> Operation:
    """Choose the cheapest operation that produces ``tgt[lo:hi]``."""
    from patchline.delta.covers import encode_add, hdiff_covers
    from patchline.delta.matching import main_shift, plan_extents

    new = tgt[lo:hi]
    copy = _find_copy(src, new, lo, main_shift(t_pos, s_pos))
    if copy is not None:
        return copy
    extents = plan_extents(
        t_pos, s_pos, (lo, hi), len(src), budget=min(SOURCE_BUDGET, MAX_OP_SOURCE)
    )
    if not extents:
        return _replace(new)
    old = b"".join(src[e.offset : e.offset + e.length] for e in extents)
    payload = codecs.diff(old, new)
    kind = OP_DIFF
    covers = hdiff_covers(payload, len(old), len(new))
    if covers is not None:
        added = encode_add(old, new, covers)
        # Raw size decides: on both reference pairs it ranks the two as their compressed
        # sizes do, and costs nothing (a fast LZMA estimate of both cost ~8% more CPU).
        if len(added) <= min(len(payload), MAX_OP_PAYLOAD):
            kind, payload = OP_ADD, added
    if len(payload) >= len(new):
        return _replace(new)
    return Operation(kind, len(new), extents, hashlib.sha256(old).digest(), payload)


def _find_copy(src: bytes | mmap.mmap, new: bytes, lo: int, shift: int | None) -> Operation | None:
    """A COPY if the span sits unchanged in the source at ``shift``."""
    if shift is None:
        return None
    start = lo + shift
    if start < 0 or start + len(new) > len(src) or src[start : start + len(new)] != new:
        return None
    return Operation(
        OP_COPY, len(new), (Extent(start, len(new)),), hashlib.sha256(new).digest(), b""
    )


def _replace(new: bytes) -> Operation:
    return Operation(OP_REPLACE, len(new), (), NO_SOURCE, new)
