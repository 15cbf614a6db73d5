"""The bootloader back ends' bookkeeping without a VM: systemd-boot's entry names on a
mounted ESP (the renames systemd-boot makes before each try played here), GRUB's
environment block against the real grub-editenv, and the booted slot read from a
kernel command line."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from patchline.agent.boot_grub import GrubEnv
from patchline.agent.boot_systemd import ENTRIES, SystemdBoot
from patchline.agent.bootloader import BootTrial, booted_slot
from patchline.agent.esp import MountedEsp
from patchline.agent.grubenv import format_grubenv, parse_grubenv
from patchline.errors import InstallFailedError
from patchline.wire.device_api import Slot

LABELS = {Slot.A: "patchline-a", Slot.B: "patchline-b"}


def systemd_boot_counts(esp: Path) -> None:
    """What systemd-boot does before booting an entry with tries left: +L-D to +L-1-D+1."""
    for entry in (esp / ENTRIES.lstrip("/")).glob("*+*.conf"):
        stem, counter = entry.stem.rsplit("+", 1)
        left, _, done = counter.partition("-")
        if int(left) > 0:
            entry.rename(entry.with_name(f"{stem}+{int(left) - 1}-{int(done or 0) + 1}.conf"))


def names(esp: Path) -> list[str]:
    """The entry files on the ESP, by name."""
    return sorted(p.name for p in (esp / "loader" / "entries").iterdir())


def test_systemd_boot_entries_count_down_and_a_good_mark_drops_the_counter(
    tmp_path: Path,
) -> None:
    boot = SystemdBoot(MountedEsp(tmp_path), kernel_options="console=ttyS0")
    boot.arm_trial(Slot.A, 1)
    boot.mark_good(Slot.A)
    boot.arm_trial(Slot.B, 3)
    assert names(tmp_path) == ["patchline-000001-a.conf", "patchline-000002-b+3.conf"]
    assert (tmp_path / "loader/entries/patchline-000002-b+3.conf").read_text() == (
        "title Patchline slot b\n"
        "linux /patchline/b/vmlinuz\n"
        "initrd /patchline/b/initrd.img\n"
        "options console=ttyS0 patchline.slot=b\n"
    )
    systemd_boot_counts(tmp_path)
    assert boot.trial() == BootTrial(Slot.B, 2, 1)
    assert boot.last_good() is Slot.A
    boot.mark_good(Slot.B)
    assert names(tmp_path) == ["patchline-000001-a.conf", "patchline-000002-b.conf"]
    assert (boot.trial(), boot.last_good()) == (None, Slot.B)

    boot.arm_trial(Slot.A, 2)  # replaces A's old entry
    assert names(tmp_path) == ["patchline-000002-b.conf", "patchline-000003-a+2.conf"]
    systemd_boot_counts(tmp_path)
    systemd_boot_counts(tmp_path)
    systemd_boot_counts(tmp_path)  # no tries left: no more renames
    assert boot.trial() == BootTrial(Slot.A, 0, 2)
    boot.forget(Slot.A)
    assert names(tmp_path) == ["patchline-000002-b.conf"]


def test_systemd_boot_mark_bad_leaves_no_tries(tmp_path: Path) -> None:
    boot = SystemdBoot(MountedEsp(tmp_path))
    boot.arm_trial(Slot.B, 3)
    systemd_boot_counts(tmp_path)
    boot.mark_bad(Slot.B)
    assert names(tmp_path) == ["patchline-000001-b+0-3.conf"]
    assert boot.trial() == BootTrial(Slot.B, 0, 3)


def test_foreign_entries_on_the_esp_are_left_alone(tmp_path: Path) -> None:
    entries = tmp_path / "loader" / "entries"
    entries.mkdir(parents=True)
    (entries / "debian-6.1.0.conf").write_text("title Debian\n")
    boot = SystemdBoot(MountedEsp(tmp_path))
    boot.arm_trial(Slot.B, 1)
    boot.forget(Slot.B)
    assert names(tmp_path) == ["debian-6.1.0.conf"]


def test_the_grub_environment_block_is_the_one_grub_editenv_reads_and_writes(
    tmp_path: Path,
) -> None:
    if shutil.which("grub-editenv") is None:
        pytest.skip("grub-editenv is not installed (grub-common, .ci/packages.txt)")
    env = GrubEnv(MountedEsp(tmp_path), "/EFI/patchline/grubenv")
    env.mark_good(Slot.A)
    env.arm_trial(Slot.B, 3)
    block = tmp_path / "EFI" / "patchline" / "grubenv"
    assert len(block.read_bytes()) == 1024
    listed = subprocess.run(
        ["grub-editenv", str(block), "list"], capture_output=True, check=True, text=True
    ).stdout.splitlines()
    assert sorted(listed) == [
        "patchline_good=a",
        "patchline_trial=b",
        "patchline_tries=3",
        "patchline_tries_done=0",
    ]
    # What grub.cfg's save_env does before the first try.
    subprocess.run(
        ["grub-editenv", str(block), "set", "patchline_tries=2", "patchline_tries_done=1"],
        check=True,
    )
    assert env.trial() == BootTrial(Slot.B, 2, 1)
    env.mark_good(Slot.B)
    assert (env.trial(), env.last_good()) == (None, Slot.B)


def test_a_grub_environment_block_that_overflows_or_is_not_one_is_refused() -> None:
    with pytest.raises(InstallFailedError, match="full"):
        format_grubenv({"x": "y" * 1024})
    with pytest.raises(InstallFailedError, match="no GRUB header"):
        parse_grubenv(b"\0" * 1024)
    assert parse_grubenv(format_grubenv({"a": "1\nb=2"})) == {"a": "1\nb=2"}


@pytest.mark.parametrize(
    ("cmdline", "slot"),
    [
        ("BOOT_IMAGE=/boot/vmlinuz console=ttyS0 patchline.slot=b quiet", Slot.B),
        ("root=PARTLABEL=patchline-a rootwait", Slot.A),
        ("initrd=\\patchline\\a\\initrd.img patchline.slot=a\n", Slot.A),
        ("root=/dev/mmcblk0p2", None),
        ("patchline.slot=c", None),
        ("xpatchline.slot=b", None),
    ],
)
def test_the_booted_slot_is_read_from_the_kernel_command_line(
    cmdline: str, slot: Slot | None
) -> None:
    assert booted_slot(cmdline, LABELS) is slot
