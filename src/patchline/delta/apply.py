"""Applying a delta: stream the patch, read source extents by offset, write the output."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

from patchline.delta import add, codecs
from patchline.delta.format import (
    NO_SOURCE,
    OP_ADD,
    OP_COPY,
    OP_DIFF,
    OP_REPLACE,
    Operation,
)
from patchline.delta.reader import PatchReader
from patchline.errors import (
    CorruptDeltaError,
    DeltaError,
    DeltaResultMismatchError,
    DeltaSourceMismatchError,
)


def apply_delta(
    source: Path,
    patch: Path | BinaryIO,
    out: Path,
    *,
    expected_sha256: str,
    expected_length: int,
) -> None:
    """Rebuild the target image at ``out`` from ``source`` and ``patch``.

    Memory stays bounded by the format's per-operation limits, whatever the image size.
    ``out`` appears only when it is complete and matches ``expected_sha256`` and
    ``expected_length`` (the bytes are written under a temporary name in ``out``'s directory,
    fsynced, then renamed); on any error nothing is left at ``out`` or beside it.
    ``patch`` may be a path or a binary stream positioned at the patch's first byte.

    Raises DeltaSourceMismatchError if ``source`` is not the image the patch was built from,
    CorruptDeltaError if the patch bytes are malformed or truncated,
    DeltaResultMismatchError if the patch does not produce the expected image, and
    DeltaError if ``out`` is ``source`` or a file cannot be read or written.
    """
    expected = expected_sha256.lower()
    if out.exists() and source.exists() and out.samefile(source):
        raise DeltaError(f"cannot apply a delta onto its own source {source}")
    try:
        with ExitStack() as stack:
            stream = stack.enter_context(patch.open("rb")) if isinstance(patch, Path) else patch
            src = stack.enter_context(source.open("rb"))
            reader = PatchReader(stream)
            _check_header(reader, src, expected, expected_length)
            _write_atomically(out, lambda f: _run(reader, src, f, expected, expected_length))
    except OSError as exc:
        raise DeltaError(f"cannot apply a delta to {source}: {exc}") from exc


def _check_header(reader: PatchReader, src: BinaryIO, expected: str, length: int) -> None:
    header = reader.header
    if header.target_sha256.hex() != expected or header.target_length != length:
        raise DeltaResultMismatchError(
            f"the delta produces {header.target_sha256.hex()} ({header.target_length} bytes), "
            f"not the expected {expected} ({length} bytes)",
            hint="fetch the delta published for this target, or the full image",
        )
    actual = os.fstat(src.fileno()).st_size
    if actual != header.source_length:
        raise DeltaSourceMismatchError(
            f"the source image is {actual} bytes; the delta needs the "
            f"{header.source_length}-byte image {header.source_sha256.hex()}",
            hint="use the full image, or the delta built from the installed build",
        )


def _write_atomically(out: Path, fill: Callable[[BinaryIO], None]) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _run(reader: PatchReader, src: BinaryIO, out: BinaryIO, expected: str, length: int) -> None:
    result = hashlib.sha256()
    written = 0
    for op in reader.operations():
        if written + op.target_length > length:
            raise CorruptDeltaError("the delta writes past the target's length")
        data = _produce(op, src)
        out.write(data)
        result.update(data)
        written += len(data)
        del data
    if written != length or result.hexdigest() != expected:
        raise DeltaResultMismatchError(
            f"applying the delta produced {result.hexdigest()} ({written} bytes), "
            f"not the expected {expected} ({length} bytes)",
            hint="the delta or the source image is damaged; fetch the full image",
        )


def _produce(op: Operation, src: BinaryIO) -> bytes:
    if op.kind == OP_REPLACE:
        return op.payload
    if op.kind == OP_COPY:
        return _read_source(op, src)
    if op.kind == OP_DIFF:
        return codecs.patch(_read_source(op, src), op.payload, op.target_length)
    if op.kind == OP_ADD:
        return add.decode(_read_source(op, src), op.payload, op.target_length)
    raise CorruptDeltaError(f"unknown delta operation kind {op.kind}")


def _read_source(op: Operation, src: BinaryIO) -> bytes:
    """The concatenated source extents of ``op``, checked against its source digest."""
    parts: list[bytes] = []
    for extent in op.extents:
        src.seek(extent.offset)
        data = src.read(extent.length)
        if len(data) != extent.length:
            raise DeltaSourceMismatchError(
                "the source image ends before a range the delta reads",
                hint="use the full image, or the delta built from the installed build",
            )
        parts.append(data)
    # One extent (the common case) is used as read, without a second copy.
    data = parts[0] if len(parts) == 1 else b"".join(parts)
    del parts
    if op.source_sha256 == NO_SOURCE or hashlib.sha256(data).digest() != op.source_sha256:
        raise DeltaSourceMismatchError(
            "the source image differs from the one the delta was built from",
            hint="use the full image, or the delta built from the installed build",
        )
    return data
