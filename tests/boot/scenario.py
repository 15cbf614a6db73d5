"""A device that boots for real from a disk image: the agent's device directory on the
host, the disk image the VM boots, and the steps every bootloader's scenario shares."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import msgspec

from patchline.agent import (
    Agent,
    DeviceConfig,
    DeviceDir,
    HealthCheck,
    UpdateResult,
    create_device,
)
from patchline.agent.device import BootSetup
from patchline.agent.real_boot import install_to_partition, open_bootloader
from patchline.agent.reports import Outbox
from patchline.agent.slots import BootOutcome
from patchline.agent.state import SlotContent, load_state, save_state
from patchline.clock import SystemClock
from patchline.wire.device_api import Report, Slot
from tests.boot.vm import Run

HEALTH_LINE = "patchline-vm: health ok"


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class BootingDevice:
    """The agent's side of a device whose disk is ``setup.disk``."""

    device: DeviceDir
    setup: BootSetup
    console: Path  # the serial console of the last boot, read by the health check

    def update(self) -> UpdateResult:
        """An update run from the device's SD card (a copy of the repository)."""
        return Agent(self.device, clock=SystemClock()).update()

    def started(self, run: Run) -> BootOutcome:
        """What `patchline agent boot` does at start-up, after the VM's last boot."""
        self.console.write_text(run.serial)
        cmdline = run.cmdlines()[-1] if run.cmdlines() else ""
        return Agent(self.device, clock=SystemClock()).started(cmdline)

    def reports(self) -> list[Report]:
        """The reports queued for the server, oldest first."""
        return [report for _, report in Outbox(self.device.outbox).pending()]


def provision(
    tmp: Path,
    setup: BootSetup,
    factory: Path,
    build: str,
    *,
    shipped_root: bytes = b"{}",
    card: Path | None = None,
    boot_attempts: int = 1,
) -> BootingDevice:
    """The factory: ``factory`` into slot A, marked good; the agent's directory (model
    alpha, updates from the SD card ``card``)."""
    console = tmp / "console.log"
    config = DeviceConfig(
        model="alpha",
        boot=setup,
        bundles=[str(card)] if card else [],
        boot_attempts=boot_attempts,
        health=HealthCheck(
            command=["sh", "-c", f'grep -q "{HEALTH_LINE}" "$0"', str(console)],
            timeout_seconds=30,
        ),
    )
    device = create_device(
        tmp / "device",
        config,
        shipped_root=shipped_root,
        image=factory,
        build=build,
        security_patch_level=date(2026, 1, 1),
    )
    # The factory writes slot A the way the agent writes any slot, then marks it good.
    staging = device.staging_file(Slot.A)
    shutil.copyfile(factory, staging)
    content = SlotContent(build=build, sha256=sha256_of(factory), security_patch_level="2026-01-01")
    as_if_b_ran = msgspec.structs.replace(load_state(device), active=Slot.B, slots={})
    state = install_to_partition(device, as_if_b_ran, setup, staging, content, 1, "factory")
    open_bootloader(setup).mark_good(Slot.A)
    save_state(device, msgspec.structs.replace(state, active=Slot.A, trial=None))
    return BootingDevice(device, setup, console)


def uboot_setup(tmp: Path) -> BootSetup:
    """A U-Boot device's storage in ``tmp``: an 8 MiB GPT disk image with 2 MiB slot
    partitions, and a U-Boot environment in a 16 KiB file (fw_env.config pointing at it)
    saying slot A is booted and good."""
    disk = tmp / "disk.img"
    with disk.open("wb") as handle:
        handle.truncate(8 << 20)
    subprocess.run(
        ["sfdisk", "-q", str(disk)],
        input=b"label: gpt\nsize=2MiB, name=patchline-a\nsize=2MiB, name=patchline-b\n",
        check=True,
    )
    env_file = tmp / "uboot.env"
    env_file.write_bytes(b"\0" * 0x4000)
    config = tmp / "fw_env.config"
    config.write_text(f"{env_file} 0x0 0x4000\n")
    defaults = tmp / "defaults.txt"
    defaults.write_text("patchline_slot=a\npatchline_good=a\nbootcmd=run patchline_boot\n")
    subprocess.run(
        ["fw_setenv", "-c", str(config), "-f", str(defaults), "-s", "-"],
        input=b"bootdelay=0\n",
        check=True,
    )
    return BootSetup(bootloader="u-boot", disk=str(disk), fw_env_config=str(config))
