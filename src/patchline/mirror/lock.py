"""One sync at a time per mirror folder."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

from patchline.errors import MirrorBusyError
from patchline.fsutil import exclusive_lock


def sync_lock(path: Path) -> AbstractContextManager[None]:
    """Hold the mirror's lock (an ``flock`` on ``path``) for the block; raise
    MirrorBusyError at once if it is taken. A killed sync never leaves it locked."""
    return exclusive_lock(
        path,
        lambda: MirrorBusyError(
            f"another sync is running on {path.parent.parent}",
            hint="wait for it to finish; syncs on a schedule must not overlap",
        ),
    )
