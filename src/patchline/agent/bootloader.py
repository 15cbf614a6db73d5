"""What the agent needs from a bootloader, whichever it is: try a slot a number of times,
say which trial is armed and how many tries it has left, mark a slot good, and say which
slot boots when no trial is armed.

The bootloader counts the tries itself, before each boot, so a kernel panic, a hang or a
power cut during a trial boot all use up a try, and the last good slot boots again by
itself when none are left. The agent only arms a trial, and marks good once a booted
slot passes its health check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from patchline.wire.device_api import Slot


@dataclass(frozen=True)
class BootTrial:
    """A slot being tried: how many tries it has left, and how many it has used."""

    slot: Slot
    tries_left: int
    tries_done: int = 0


class Bootloader(Protocol):
    """One bootloader's A/B switch and try counter."""

    name: str

    def install_boot_files(self, slot: Slot, image: Path) -> None:
        """Put where the bootloader reads them the files it needs to boot ``slot`` from
        the verified ``image`` (nothing for a bootloader that reads the slot itself)."""
        ...

    def forget(self, slot: Slot) -> None:
        """Make sure ``slot`` is not booted (it is about to be overwritten)."""
        ...

    def arm_trial(self, slot: Slot, tries: int) -> None:
        """Boot ``slot`` next, at most ``tries`` times unless it is marked good first."""
        ...

    def trial(self) -> BootTrial | None:
        """The armed trial, or None."""
        ...

    def mark_good(self, slot: Slot) -> None:
        """``slot`` booted healthy: boot it from now on, with no counting."""
        ...

    def mark_bad(self, slot: Slot) -> None:
        """``slot`` booted but failed its health check: use up its tries, so the last good
        slot boots next."""
        ...

    def last_good(self) -> Slot | None:
        """The slot that boots when no trial is armed (or its tries are used up)."""
        ...


_SLOT_ARG = re.compile(r"(?:^|\s)patchline\.slot=([ab])(?:\s|$)")
_PARTLABEL = re.compile(r"(?:^|\s)root=PARTLABEL=(\S+)")


def booted_slot(cmdline: str, labels: dict[Slot, str]) -> Slot | None:
    """The slot named on a kernel command line: ``patchline.slot=a|b``, or
    ``root=PARTLABEL=<label>`` for one of the slot partitions' ``labels``; None when
    it names neither."""
    match = _SLOT_ARG.search(cmdline)
    if match:
        return Slot(match.group(1))
    match = _PARTLABEL.search(cmdline)
    if match:
        for slot, label in labels.items():
            if label == match.group(1):
                return slot
    return None
