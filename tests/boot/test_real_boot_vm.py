"""The agent on a real boot, in a virtual machine (qemu, OVMF, Debian's kernel): the
agent writes a slot of the disk image and arms the bootloader's try counter; the VM
boots it, its health check passes, it is marked good; a build whose kernel panics is
tried the set number of times and the bootloader falls back to the good slot by itself;
the agent sees the fallback and reports a rollback. A power cut during a trial boot
uses up a try. With systemd-boot (boot counting) and GRUB (grubenv).

One boot takes 10-30 s of a shared core under software emulation: the default suite
runs the shortest fallback (one failed try, two boots); the long form runs the rest.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import msgspec
import pytest

from patchline.agent.boot_grub import grub_script
from patchline.agent.boot_systemd import SystemdBoot
from patchline.agent.bootloader import BootTrial
from patchline.agent.device import BootSetup
from patchline.agent.esp import ImageEsp
from patchline.agent.real_boot import open_bootloader
from patchline.agent.state import load_state
from patchline.repository import ReleaseRequest, Repository, add_release
from patchline.wire.device_api import ReportCode, ReportStatus, Slot
from patchline.wire.release import UpdateClass
from tests.boot.scenario import BootingDevice, provision
from tests.boot.vm import (
    KERNEL_OPTIONS,
    SYSTEMD_BOOT,
    Disk,
    Machine,
    build_disk,
    require_vm_tools,
    slot_image,
)

GOOD, UPDATE, BROKEN = "2026.01", "2026.02", "2026.03"


@dataclass
class Rig:
    """A device, its disk image, and the VM that boots it."""

    device: BootingDevice
    disk: Disk
    machine: Machine
    images: dict[str, Path]
    repo: Repository
    card: Path

    def publish(self, build: str, tries: int) -> None:
        """Sign ``build`` (its slot image) and copy the repository to the SD card; the
        device will give it ``tries`` tries."""
        add_release(
            self.repo,
            ReleaseRequest(
                image=self.images[build],
                model="alpha",
                build=build,
                security_patch_level=date(2026, int(build[-2:]), 1),
                update_class=UpdateClass.SECURITY,
            ),
        )
        shutil.copytree(self.repo.layout.public_dir, self.card, dirs_exist_ok=True)
        config = self.device.device.load_config()
        self.device.device.save_config(msgspec.structs.replace(config, boot_attempts=tries))

    def update(self, build: str, tries: int) -> None:
        """Publish ``build`` and run the agent: it lands in the inactive slot, armed."""
        self.publish(build, tries)
        result = self.device.update()
        assert (result.status, result.build) == ("installed", build), result.message
        assert "reboot to try it" in result.message

    def trial(self) -> BootTrial | None:
        """What the bootloader's own state says about the trial."""
        return open_bootloader(self.device.setup).trial()

    def last_good(self) -> Slot | None:
        """The slot the bootloader boots when no trial is armed."""
        return open_bootloader(self.device.setup).last_good()


def _grub_efi(tmp: Path) -> Path:
    out = tmp / "grubx64.efi"
    modules = ["part_gpt", "fat", "ext2", "normal", "linux", "loadenv", "test", "echo"]
    subprocess.run(
        ["grub-mkimage", "-O", "x86_64-efi", "-p", "/EFI/patchline", "-o", str(out), *modules],
        check=True,
        capture_output=True,
    )
    return out


def make_rig(tmp: Path, bootloader: str, repo: Repository) -> Rig:
    """The disk image of a device with ``bootloader``, slot A holding the factory build;
    updates reach it on an SD card made from ``repo``."""
    require_vm_tools(grub=bootloader == "grub")
    images = {
        GOOD: slot_image(tmp / "factory.img", GOOD),
        UPDATE: slot_image(tmp / "update.img", UPDATE, pause=5),
        BROKEN: slot_image(tmp / "broken.img", BROKEN, broken=True),
    }
    if bootloader == "systemd-boot":
        esp_files: dict[str, bytes | Path] = {
            "/EFI/BOOT/BOOTX64.EFI": SYSTEMD_BOOT,
            "/loader/loader.conf": b"timeout 0\n",
        }
        memory = 256
    else:
        script = grub_script({Slot.A: "hd0,gpt2", Slot.B: "hd0,gpt3"}, KERNEL_OPTIONS)
        esp_files = {
            "/EFI/BOOT/BOOTX64.EFI": _grub_efi(tmp),
            "/EFI/patchline/grub.cfg": script.encode(),
        }
        memory = 512  # GRUB under OVMF needs at least 512 MB
    disk = build_disk(tmp / "disk.img", esp_files)
    setup = BootSetup(
        bootloader=bootloader,
        disk=str(disk.path),
        esp="partlabel:ESP",
        kernel_options=KERNEL_OPTIONS,
    )
    card = tmp / "card"
    device = provision(
        tmp,
        setup,
        images[GOOD],
        GOOD,
        shipped_root=repo.layout.metadata_file("root", 1).read_bytes(),
        card=card,
    )
    return Rig(device, disk, Machine(disk.path, tmp, memory_mb=memory), images, repo, card)


def falls_back_from_a_panicking_build(rig: Rig, tries: int) -> None:
    """The broken build into the inactive slot with ``tries``: each try panics, then the
    bootloader boots the good slot by itself, and the agent reports the rollback."""
    good_slot = load_state(rig.device.device).active
    good_build = load_state(rig.device.device).running.build
    broken_slot = Slot.B if good_slot is Slot.A else Slot.A
    rig.update(BROKEN, tries)
    assert rig.trial() == BootTrial(broken_slot, tries, 0)
    run = rig.machine.boot()
    assert run.powered_off
    assert [line.split(";")[0] for line in run.started()] == [
        f"patchline-vm: started build {BROKEN}"
    ] * tries + [f"patchline-vm: started build {good_build}"]
    assert f"patchline.slot={good_slot}" in run.cmdlines()[-1]
    assert rig.trial() == BootTrial(broken_slot, 0, tries)

    outcome = rig.device.started(run)
    assert (outcome.result, outcome.slot, outcome.tried_build) == (
        "rolled-back",
        good_slot,
        BROKEN,
    )
    report = rig.device.reports()[-1]
    assert (report.status, report.code, report.build) == (
        ReportStatus.ROLLED_BACK,
        ReportCode.BOOT_FAILED,
        BROKEN,
    )
    assert (
        f"fell back to slot {good_slot} after {tries} failed tries of slot {broken_slot}"
        in report.detail
    )
    state = load_state(rig.device.device)
    assert (state.active, state.trial) == (good_slot, None)
    assert BROKEN in state.refused_builds
    assert rig.trial() is None
    assert rig.last_good() is good_slot


def test_systemd_boot_falls_back_from_a_build_that_panics(tmp_path: Path, repo: Repository) -> None:
    rig = make_rig(tmp_path, "systemd-boot", repo)
    falls_back_from_a_panicking_build(rig, tries=1)
    esp = ImageEsp(rig.disk.path, rig.disk.esp_offset)
    # The failed entry is gone: slot B boots no more until a new build is written there.
    assert [e.name for e in SystemdBoot(esp).entries()] == ["patchline-000001-a.conf"]


@pytest.mark.long
@pytest.mark.parametrize("bootloader", ["systemd-boot", "grub"])
def test_a_trial_boots_healthy_is_kept_then_a_panicking_build_falls_back(
    tmp_path: Path, bootloader: str, repo: Repository
) -> None:
    rig = make_rig(tmp_path, bootloader, repo)
    rig.update(UPDATE, 3)
    assert rig.trial() == BootTrial(Slot.B, 3, 0)
    run = rig.machine.boot()
    assert run.powered_off
    assert "patchline.slot=b" in run.cmdlines()[-1]
    assert rig.trial() == BootTrial(Slot.B, 2, 1)  # counted by the bootloader before booting

    outcome = rig.device.started(run)
    assert (outcome.result, outcome.slot, outcome.build) == ("committed", Slot.B, UPDATE)
    assert rig.device.reports()[-1].status is ReportStatus.BOOTED_HEALTHY
    assert rig.trial() is None
    assert rig.last_good() is Slot.B

    falls_back_from_a_panicking_build(rig, tries=2)


@pytest.mark.long
@pytest.mark.parametrize("bootloader", ["systemd-boot", "grub"])
def test_a_power_cut_during_the_trial_boot_uses_up_a_try(
    tmp_path: Path, bootloader: str, repo: Repository
) -> None:
    rig = make_rig(tmp_path, bootloader, repo)
    rig.update(UPDATE, 1)
    # The power goes while the new build starts, before its health check.
    run = rig.machine.boot(kill_at=f"patchline-vm: started build {UPDATE}")
    assert not run.powered_off
    assert run.cmdlines() == []
    assert rig.trial() == BootTrial(Slot.B, 0, 1)

    run = rig.machine.boot()  # the try was used up: the good slot boots by itself
    assert run.powered_off
    assert run.started() == [f"patchline-vm: started build {GOOD}"]
    outcome = rig.device.started(run)
    assert (outcome.result, outcome.slot, outcome.tried_build) == ("rolled-back", Slot.A, UPDATE)
    report = rig.device.reports()[-1]
    assert (report.status, report.code) == (ReportStatus.ROLLED_BACK, ReportCode.BOOT_FAILED)
    assert "after 1 failed tries of slot b" in report.detail
