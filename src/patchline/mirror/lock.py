"""One sync at a time per mirror folder."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from patchline.errors import MirrorBusyError


@contextlib.contextmanager
def sync_lock(path: Path) -> Iterator[None]:
    """Hold the mirror's lock for the block; raise MirrorBusyError at once if it is taken.

    The lock is an ``flock`` on ``path``: the kernel drops it when the process dies, so
    a killed sync never leaves the mirror locked.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MirrorBusyError(
                f"another sync is running on {path.parent.parent}",
                hint="wait for it to finish; syncs on a schedule must not overlap",
            ) from None
        yield
    finally:
        os.close(fd)
