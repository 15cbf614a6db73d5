"""systemd-boot with boot counting (the Boot Loader Specification, type #1 entries).

Each slot has one entry in ``/loader/entries`` on the ESP, named
``<prefix>-<generation>-<slot>[+<left>[-<done>]].conf``. A trial is an entry with a
counter (``+3``); before each try systemd-boot renames it (``+2-1``, ``+1-2``, ...).
An entry with no tries left (``+0-3``) sorts after every other entry, so the previous
slot's entry (an older generation, no counter: known good) is the default again.
Otherwise the newest generation sorts first and is the default. Marking good is a
rename that drops the counter.

The kernel and initrd of each slot are copied from the slot's image (an ext4 file
system holding /boot/vmlinuz and /boot/initrd.img) to ``/<prefix>/<slot>/`` on the ESP,
since systemd-boot reads only the ESP.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from patchline.agent.bootloader import BootTrial
from patchline.agent.esp import Esp
from patchline.errors import InstallFailedError
from patchline.wire.device_api import Slot

ENTRIES = "/loader/entries"


@dataclass(frozen=True)
class Entry:
    """One of the agent's boot entries, parsed from its file name."""

    name: str
    generation: int
    slot: Slot
    tries_left: int | None
    tries_done: int


class SystemdBoot:
    """The A/B switch through systemd-boot's boot counting."""

    name = "systemd-boot"

    def __init__(self, esp: Esp, *, kernel_options: str = "", prefix: str = "patchline") -> None:
        self.esp = esp
        self.kernel_options = kernel_options
        self.prefix = prefix
        self._pattern = re.compile(
            rf"^{re.escape(prefix)}-(\d+)-([ab])(?:\+(\d+)(?:-(\d+))?)?\.conf$"
        )

    def entries(self) -> list[Entry]:
        """The agent's entries on the ESP, newest generation first."""
        found = []
        for name in self.esp.list(ENTRIES):
            match = self._pattern.match(name)
            if match:
                gen, slot, left, done = match.groups()
                found.append(
                    Entry(
                        name,
                        int(gen),
                        Slot(slot),
                        int(left) if left is not None else None,
                        int(done or 0),
                    )
                )
        return sorted(found, key=lambda e: e.generation, reverse=True)

    def install_boot_files(self, slot: Slot, image: Path) -> None:
        """Copy /boot/vmlinuz and /boot/initrd.img out of the ext4 ``image`` to the ESP."""
        with tempfile.TemporaryDirectory(prefix="patchline-boot-") as tmp:
            for name in ("vmlinuz", "initrd.img"):
                local = Path(tmp) / name
                _ext4_dump(image, f"/boot/{name}", local)
                self.esp.copy_in(local, f"/{self.prefix}/{slot.value}/{name}")

    def forget(self, slot: Slot) -> None:
        """Delete the entries of ``slot``."""
        for entry in self.entries():
            if entry.slot is slot:
                self.esp.remove(f"{ENTRIES}/{entry.name}")

    def arm_trial(self, slot: Slot, tries: int) -> None:
        """Write a new-generation entry for ``slot`` with ``+tries`` (replacing any old one)."""
        entries = self.entries()
        generation = (entries[0].generation if entries else 0) + 1
        self.forget(slot)
        where = f"/{self.prefix}/{slot.value}"
        options = f"{self.kernel_options} patchline.slot={slot.value}".strip()
        body = (
            f"title Patchline slot {slot.value}\n"
            f"linux {where}/vmlinuz\n"
            f"initrd {where}/initrd.img\n"
            f"options {options}\n"
        )
        name = f"{self.prefix}-{generation:06d}-{slot.value}+{max(tries, 1)}.conf"
        self.esp.write(f"{ENTRIES}/{name}", body.encode())

    def trial(self) -> BootTrial | None:
        """The entry that still counts tries, if any."""
        for entry in self.entries():
            if entry.tries_left is not None:
                return BootTrial(entry.slot, entry.tries_left, entry.tries_done)
        return None

    def mark_good(self, slot: Slot) -> None:
        """Rename the entry of ``slot`` to drop its counter."""
        for entry in self.entries():
            if entry.slot is slot and entry.tries_left is not None:
                self.esp.rename(
                    f"{ENTRIES}/{entry.name}",
                    f"{self.prefix}-{entry.generation:06d}-{slot.value}.conf",
                )

    def mark_bad(self, slot: Slot) -> None:
        """Rename the entry of ``slot`` to ``+0-<done>``: it sorts last from now on."""
        for entry in self.entries():
            if entry.slot is slot:
                done = entry.tries_done + (entry.tries_left or 0) or 1
                self.esp.rename(
                    f"{ENTRIES}/{entry.name}",
                    f"{self.prefix}-{entry.generation:06d}-{slot.value}+0-{done}.conf",
                )

    def last_good(self) -> Slot | None:
        """The newest entry without a counter."""
        for entry in self.entries():
            if entry.tries_left is None:
                return entry.slot
        return None


def _ext4_dump(image: Path, inside: str, out: Path) -> None:
    """Copy the file ``inside`` the ext4 file system ``image`` to ``out`` (debugfs)."""
    try:
        done = subprocess.run(
            ["debugfs", "-R", f"dump {inside} {out}", str(image)],
            capture_output=True,
            check=False,
            timeout=120,
        )
    except OSError as exc:
        raise InstallFailedError(
            f"cannot run debugfs: {exc.strerror}", hint="install Debian's e2fsprogs"
        ) from None
    if done.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        raise InstallFailedError(
            f"the image holds no {inside} to boot: {done.stderr.decode(errors='replace')[-200:]}"
        )
