"""An update run on a device that boots for real (U-Boot here, the cheapest to stand
up): the verified image goes into the inactive slot's GPT partition, the bootloader's
trial is armed, and nothing more happens until the reboot."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from patchline.agent import Agent, DeviceDir
from patchline.agent.boot_uboot import UBootEnv
from patchline.agent.bootloader import BootTrial
from patchline.agent.reports import Outbox
from patchline.agent.state import load_state
from patchline.clock import SystemClock
from patchline.repository import Repository
from patchline.wire.device_api import ReportStatus, Slot
from tests.agent.hosts import RangeHost
from tests.boot.scenario import uboot_setup
from tests.conftest import image_bytes, publish


def test_an_update_is_written_into_the_inactive_partition_and_waits_for_the_reboot(
    repo: Repository,
    make_device: Callable[..., DeviceDir],
    hosts: Callable[..., RangeHost],
    tmp_path: Path,
) -> None:
    for tool in ("fw_setenv", "sfdisk"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (.ci/packages.txt)")
    publish(repo, "alpha", "2.0")
    host = hosts(repo.layout.public_dir)
    setup = uboot_setup(tmp_path)
    device = make_device(mirrors=[host.url], boot=setup, boot_attempts=3)

    result = Agent(device, clock=SystemClock()).update()

    assert result.status == "installed"
    assert "reboot to try it" in result.message
    with Path(setup.disk).open("rb") as disk:  # partition patchline-b starts at 3 MiB
        disk.seek(3 << 20)
        assert disk.read(64 * 1024) == image_bytes("alpha/2.0")
    assert UBootEnv(Path(setup.fw_env_config)).trial() == BootTrial(Slot.B, 3, 0)
    state = load_state(device)
    assert (state.active, state.trial.slot if state.trial else None) == (Slot.A, Slot.B)
    assert not device.staging_file(Slot.B).exists()
    statuses = [r.status for _, r in Outbox(device.outbox).pending()]
    assert statuses[-1] is ReportStatus.INSTALLED

    again = Agent(device, clock=SystemClock()).update()  # before the reboot: nothing new
    assert again.status == "installed"
    assert "waits for a reboot" in again.message
    assert len(host.target_requests()) == 1
