"""A power cut at each step of `patchline agent boot` on a device that boots for real
(U-Boot's environment in a file, the slots in a GPT disk image): the next start-up
settles the same boot, and exactly one report says how the trial ended.

The command runs in a child process wrapped (as in test_power_cut_install) so the
process stops dead with ``os._exit`` at a named step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from patchline.agent import DeviceDir
from patchline.agent.boot_uboot import UBootEnv
from patchline.agent.state import load_state
from patchline.wire.device_api import ReportStatus, Slot
from tests.boot.test_uboot_env import device, install, uboot_boots
from tests.faults.test_power_cut_install import POWER_CUT, outcomes

__all__ = ["device"]  # the fixture, shared

#: Runs `patchline agent boot DEVICE --cmdline FILE` with the power cut at argv[1].
RUNNER = r"""
import os
import sys

import patchline.agent.agent as agent
import patchline.agent.boot_uboot as boot_uboot
import patchline.agent.real_boot as real_boot
import patchline.agent.reports as reports
from patchline.cli.main import main

step, device, cmdline = sys.argv[1], sys.argv[2], sys.argv[3]


def cut(*_args, **_kwargs):
    os._exit(137)


def after(owner, name):
    original = getattr(owner, name)

    def wrapped(*args, **kwargs):
        original(*args, **kwargs)
        cut()

    setattr(owner, name, wrapped)


if step == "marked":  # the bootloader marked the slot good (or bad), state.json not saved
    after(boot_uboot.UBootEnv, "mark_good")
    after(boot_uboot.UBootEnv, "mark_bad")
elif step == "saved":  # the commit (or rollback) saved with its report waiting
    after(real_boot, "save_state")
elif step == "queued":  # the report is in the outbox, state.json still says it waits
    after(reports.Outbox, "add")
elif step == "settled":  # everything saved and queued, nothing sent
    agent.Agent._send_reports = cut
else:
    raise SystemExit(f"unknown step {step}")
sys.exit(main(["agent", "boot", device, "--cmdline", cmdline]))
"""

STEPS = ["marked", "saved", "queued", "settled"]
#: Steps run in the default suite; the others (about 9 s each) in the long form.
QUICK = {"saved"}


def start_up(device: DeviceDir, cmdline: Path, step: str | None) -> int:
    """`patchline agent boot` in a child process, cut at ``step`` (None: not cut)."""
    if step is None:
        args = ["-m", "patchline.cli.main", "agent", "boot", str(device.path)]
        args += ["--cmdline", str(cmdline)]
    else:
        args = ["-c", RUNNER, step, str(device.path), str(cmdline)]
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, check=False, timeout=60
    )
    return done.returncode


@pytest.mark.parametrize("healthy", [True, False], ids=["committed", "rolled-back"])
@pytest.mark.parametrize(
    "step", [pytest.param(s, marks=() if s in QUICK else pytest.mark.long) for s in STEPS]
)
def test_a_power_cut_at_each_step_of_the_start_up_loses_no_boot_report(
    step: str, healthy: bool, device: tuple[DeviceDir, UBootEnv], tmp_path: Path
) -> None:
    dev, env = device
    assert install(dev, tmp_path, "2026.02", tries=3) is Slot.B
    if not healthy:
        (tmp_path / "healthy").unlink()
    assert uboot_boots(env) is Slot.B
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("root=PARTLABEL=patchline-b\n")

    assert start_up(dev, cmdline, step) == POWER_CUT

    # The power comes back: the bootloader boots what its environment now says, and
    # the start-up command settles that boot.
    booted = uboot_boots(env)
    cmdline.write_text(f"root=PARTLABEL=patchline-{booted}\n")
    start_up(dev, cmdline, None)
    start_up(dev, cmdline, None)  # a further start-up adds nothing

    ending = ReportStatus.BOOTED_HEALTHY if healthy else ReportStatus.ROLLED_BACK
    assert outcomes(dev) == [ending]
    state = load_state(dev)
    assert state.trial is None
    assert state.unreported_boot is None
    assert env.trial() is None
    if healthy:
        assert state.active is Slot.B
        assert state.running.build == "2026.02"
        assert uboot_boots(env) is Slot.B
    else:
        assert state.active is Slot.A
        assert state.refused_builds == ["2026.02"]
        assert uboot_boots(env) is Slot.A
