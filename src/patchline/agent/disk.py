"""Slots on real storage: partitions of a GPT disk found by their partition label.

The disk is a whole-disk block device on a device (/dev/mmcblk0) or a disk image file
when an image is serviced on a host; either way a slot is a byte range of it, read from
the partition table with ``sfdisk --json``. An image goes in with its SHA-256 checked as
it is written, and is synced before the bootloader is told to try it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from patchline.errors import DeviceSetupError, InstallFailedError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Partition:
    """One GPT partition: its label and byte range on the disk."""

    label: str
    number: int
    offset: int
    size: int


def gpt_partitions(disk: Path) -> dict[str, Partition]:
    """The partitions of ``disk`` by GPT partition label; DeviceSetupError when the disk
    cannot be read or has no GPT."""
    try:
        done = subprocess.run(
            ["sfdisk", "--json", str(disk)], capture_output=True, check=False, timeout=60
        )
    except OSError as exc:
        raise DeviceSetupError(
            f"cannot run sfdisk: {exc.strerror}", hint="install Debian's fdisk"
        ) from None
    if done.returncode != 0:
        raise DeviceSetupError(
            f"cannot read the partition table of {disk}: {done.stderr.decode().strip()}"
        )
    table = json.loads(done.stdout)["partitiontable"]
    if table.get("label") != "gpt":
        raise DeviceSetupError(f"{disk} has no GPT partition table")
    sector = int(table.get("sectorsize", 512))
    found = {}
    for number, part in enumerate(table.get("partitions", []), start=1):
        name = part.get("name", "")
        if name:
            found[name] = Partition(name, number, part["start"] * sector, part["size"] * sector)
    return found


def find_partition(disk: Path, label: str) -> Partition:
    """The partition of ``disk`` labelled ``label``; DeviceSetupError when there is none."""
    partitions = gpt_partitions(disk)
    if label not in partitions:
        raise DeviceSetupError(
            f"{disk} has no partition labelled {label!r} (found: {', '.join(partitions)})"
        )
    return partitions[label]


def write_partition(disk: Path, partition: Partition, image: Path, sha256: str) -> None:
    """Copy ``image`` into ``partition`` of ``disk``, hashing as it goes, and sync.

    Raises InstallFailedError when the image does not fit, cannot be written, or does not
    hash to ``sha256`` as read (the partition is then not to be booted).
    """
    size = image.stat().st_size
    if size > partition.size:
        raise InstallFailedError(
            f"the image ({size} bytes) does not fit partition {partition.label} "
            f"({partition.size} bytes)"
        )
    digest = hashlib.sha256()
    try:
        with image.open("rb") as source, disk.open("r+b") as target:
            target.seek(partition.offset)
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                target.write(chunk)
            target.flush()
            os.fsync(target.fileno())
    except OSError as exc:
        raise InstallFailedError(
            f"cannot write partition {partition.label} of {disk}: {exc.strerror}"
        ) from None
    if digest.hexdigest() != sha256:
        raise InstallFailedError(
            f"the image written to partition {partition.label} does not match its signed "
            "SHA-256 (it changed on disk after it was verified)"
        )
