"""Sending files kept on disk (reports, receipts) in batches, each file removed only
once the server acknowledged its id."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

BATCH = 100

Item = TypeVar("Item")


def send_in_batches(
    queued: Sequence[tuple[Path, Item]],
    send: Callable[[list[Item]], Iterable[str]],
    item_id: Callable[[Item], str],
) -> int:
    """Pass ``queued`` to ``send`` in batches of ``BATCH``; ``send`` returns the ids the
    server acknowledged, whose files are removed. Returns how many were acknowledged.

    An error ``send`` raises stops the sending; what was not acknowledged stays queued.
    """
    sent = 0
    for start in range(0, len(queued), BATCH):
        batch = queued[start : start + BATCH]
        accepted = set(send([item for _, item in batch]))
        for path, item in batch:
            if item_id(item) in accepted:
                path.unlink(missing_ok=True)
                sent += 1
    return sent
