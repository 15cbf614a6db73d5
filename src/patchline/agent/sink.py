"""Hash and write a stream of bytes at once, on two cores, without copying it around.

The reader fills reusable buffers from a small ring; one thread hashes each filled buffer
and another writes it to the file, in order. hashlib and os.pwrite both release the GIL,
so receiving, hashing and writing overlap; no bytes object is made per chunk. Aligned
chunks go through an O_DIRECT descriptor when there is one: the disk copies them from
the buffer, so the CPU does not copy them into the page cache.
"""

from __future__ import annotations

import errno
import mmap
import os
import queue
import threading
from collections.abc import Sequence
from typing import Protocol

#: Size of one ring buffer: the largest read the sink hands out.
SLOT = 1 << 20
#: Buffers in the ring: how far the reader may run ahead of the slower worker.
SLOTS = 8
#: O_DIRECT needs offsets and lengths in whole blocks (and page-aligned buffers).
ALIGN = 4096


class Hasher(Protocol):
    """What the sink needs of a hashlib object."""

    def update(self, data: memoryview, /) -> None: ...


def open_direct(path: str | os.PathLike[str]) -> int | None:
    """A write descriptor of ``path`` that bypasses the page cache, or None where the
    filesystem refuses O_DIRECT (tmpfs, some FUSE mounts) or the platform lacks it."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return None
    try:
        return os.open(path, os.O_WRONLY | flag)
    except OSError:
        return None


class HashingWriter:
    """Writes every committed chunk to ``fd`` at ``offset`` onwards and feeds it to each
    of ``hashers``, in commit order, in two worker threads.

    When ``direct_fd`` (the same file opened with O_DIRECT) is given, chunks that start
    and end on an ``ALIGN`` boundary are written through it; if the filesystem refuses
    one, that chunk and all later ones go through ``fd``.

    ``buffer()`` hands out a free ring buffer to fill; ``commit(n)`` passes its first
    ``n`` bytes on. A buffer is handed out again only when both workers are done with
    it, so memory stays at ``slots * slot_size``. A failed write is raised (as the
    OSError it was) by the next ``buffer()`` or by ``close()``; after a failure nothing
    more is written. ``close()`` returns once every committed chunk is hashed and
    written. The file is not fsynced.
    """

    def __init__(
        self,
        fd: int,
        hashers: Sequence[Hasher],
        offset: int,
        *,
        direct_fd: int | None = None,
        slots: int = SLOTS,
        slot_size: int = SLOT,
    ) -> None:
        self._fd = fd
        self._direct_fd = direct_fd
        self._offset = offset
        self._hashers = list(hashers)
        # mmap memory is page-aligned, as O_DIRECT needs.
        self._ring = [memoryview(mmap.mmap(-1, slot_size)) for _ in range(slots)]
        self._next = 0
        self._in_flight = 0
        self._to_hash: queue.SimpleQueue[memoryview | None] = queue.SimpleQueue()
        self._to_write: queue.SimpleQueue[memoryview | None] = queue.SimpleQueue()
        self._hashed: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._written: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._error: OSError | None = None
        self._threads = [
            threading.Thread(target=self._hash, daemon=True),
            threading.Thread(target=self._write, daemon=True),
        ]
        self._closed = False

    def __enter__(self) -> HashingWriter:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        self._stop()
        if exc_type is None:
            self._raise_error()

    def buffer(self) -> memoryview:
        """A free buffer of ``slot_size`` bytes to fill (waits for one if all are busy)."""
        if self._in_flight == len(self._ring):
            self._hashed.get()
            self._written.get()
            self._in_flight -= 1
        self._raise_error()
        return self._ring[self._next]

    def commit(self, n: int) -> None:
        """Hash and write the first ``n`` bytes of the buffer last handed out."""
        chunk = self._ring[self._next][:n]
        self._next = (self._next + 1) % len(self._ring)
        self._in_flight += 1
        self._to_hash.put(chunk)
        self._to_write.put(chunk)

    def close(self) -> None:
        """Wait until everything committed is hashed and written; raise a failed write."""
        self._stop()
        self._raise_error()

    def _stop(self) -> None:
        if not self._closed:
            self._closed = True
            self._to_hash.put(None)
            self._to_write.put(None)
            for thread in self._threads:
                thread.join()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _hash(self) -> None:
        while (chunk := self._to_hash.get()) is not None:
            for hasher in self._hashers:
                hasher.update(chunk)
            self._hashed.put(None)

    def _write(self) -> None:
        while (chunk := self._to_write.get()) is not None:
            if self._error is None:
                try:
                    self._write_at(chunk)
                except OSError as exc:
                    self._error = exc
            self._written.put(None)

    def _write_at(self, chunk: memoryview) -> None:
        if self._direct_fd is not None and not (self._offset | len(chunk)) % ALIGN:
            try:
                while chunk:
                    written = os.pwrite(self._direct_fd, chunk, self._offset)
                    chunk = chunk[written:]
                    self._offset += written
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self._direct_fd = None  # refused after all: write the rest buffered
        while chunk:
            written = os.pwrite(self._fd, chunk, self._offset)
            chunk = chunk[written:]
            self._offset += written
