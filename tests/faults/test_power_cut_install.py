"""A power cut at each step of an install: the device always boots a good build, and
the next run finishes the install (or rolls back) with exactly one report of how it ended.

The agent runs in a child process. A small runner wraps one function of the agent so
the process stops dead with ``os._exit`` (no flush, no ``finally``, no lock release but
the kernel's) at a named step: deterministic, not timed.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

from patchline.agent import DeviceDir
from patchline.agent.reports import Outbox
from patchline.agent.state import load_state
from patchline.repository import Repository
from patchline.wire.device_api import ReportStatus, Slot
from tests.agent import conftest as agent_fixtures
from tests.agent.hosts import RangeHost
from tests.agent.test_install import publish_delta
from tests.conftest import image_bytes, publish

hosts = agent_fixtures.hosts
make_device = agent_fixtures.make_device

POWER_CUT = 137

#: Runs `patchline agent update DEVICE` with the power cut at the step named in argv[1].
RUNNER = r"""
import os
import sys

import patchline.agent.agent as agent
import patchline.agent.slots as slots
from patchline.cli.main import main

step, device = sys.argv[1], sys.argv[2]


def cut(*_args, **_kwargs):
    os._exit(137)


def before(module, name):
    setattr(module, name, cut)


def after(module, name):
    original = getattr(module, name)

    def wrapped(*args, **kwargs):
        original(*args, **kwargs)
        cut()

    setattr(module, name, wrapped)


class _CutBeforeSlotReplace:
    def __getattr__(self, name):
        return getattr(os, name)

    @staticmethod
    def replace(src, dst):
        if str(dst).endswith(".img"):
            cut()
        os.replace(src, dst)


if step == "downloaded":  # the whole image is on disk, staging not yet fsynced
    after(agent, "download_verified")
elif step == "staged":  # staging fsynced, not yet moved into the slot
    slots.os = _CutBeforeSlotReplace()
elif step == "slot-replaced":  # the slot holds the new image, state.json does not say so
    before(slots, "_arm")
elif step == "armed":  # the trial is armed and saved, nothing reported of the install
    after(agent, "install_image")
elif step == "install-reported":  # INSTALLED queued, the trial boot not started
    before(agent, "boot")
elif step == "trial-started":  # attempts_left decremented and saved, no health check yet
    before(slots, "check_health")
elif step == "healthy":  # the health check passed, the commit not saved
    after(slots, "check_health")
elif step == "committed":  # the new slot is committed, its outcome not yet queued
    after(agent, "boot")
elif step == "outcome-reported":  # the outcome is queued, nothing sent
    before(agent.Agent, "_send_reports")
elif step == "delta-writing":  # the patch half applied into the inactive slot's temp file
    import patchline.delta.apply as apply

    run = apply._run

    class _HalfWritten:
        def __init__(self, out):
            self.out = out

        def write(self, data):
            self.out.write(data[: len(data) // 2])
            self.out.flush()
            cut()

    apply._run = lambda reader, src, out, *rest: run(reader, src, _HalfWritten(out), *rest)
elif step == "delta-verified":  # the result's hash checked, not yet renamed into the slot
    import patchline.delta.apply as apply

    after(apply, "_run")
elif step == "delta-slot-written":  # the slot holds the new image, no trial armed
    after(slots, "apply_delta")
elif step == "delta-armed":  # the boot slot switched to the trial and saved
    after(agent, "install_delta")
else:
    raise SystemExit(f"unknown step {step}")
sys.exit(main(["agent", "update", device]))
"""

#: Each step, and how the install ends after the power comes back: the new build
#: booted healthy, or (the one boot attempt already spent) rolled back to the old one.
STEPS = {
    "downloaded": ReportStatus.BOOTED_HEALTHY,
    "staged": ReportStatus.BOOTED_HEALTHY,
    "slot-replaced": ReportStatus.BOOTED_HEALTHY,
    "armed": ReportStatus.BOOTED_HEALTHY,
    "install-reported": ReportStatus.BOOTED_HEALTHY,
    "trial-started": ReportStatus.ROLLED_BACK,
    "healthy": ReportStatus.ROLLED_BACK,
    "committed": ReportStatus.BOOTED_HEALTHY,
    "outcome-reported": ReportStatus.BOOTED_HEALTHY,
}
COMMITTED_BY_THE_CUT = {"committed", "outcome-reported"}


def run_agent(device: DeviceDir, step: str | None) -> subprocess.CompletedProcess[str]:
    args = ["-c", RUNNER, step, str(device.path)] if step else ["-m", "patchline.cli.main"]
    if step is None:
        args += ["agent", "update", str(device.path)]
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, check=False, timeout=60
    )


def assert_boots_a_good_build(device: DeviceDir) -> str:
    """state.json names a committed slot whose image is the build it says; returns it."""
    state = load_state(device)
    running = state.running
    assert device.slot_image(state.active).read_bytes() == image_bytes(f"alpha/{running.build}")
    for name, content in state.slots.items():
        image = device.slot_image(Slot(name)).read_bytes()
        assert image == image_bytes(f"alpha/{content.build}"), f"slot {name}"
    return running.build


def outcomes(device: DeviceDir) -> list[ReportStatus]:
    ends = {ReportStatus.BOOTED_HEALTHY, ReportStatus.ROLLED_BACK}
    return [r.status for _, r in Outbox(device.outbox).pending() if r.status in ends]


#: Steps run in the default suite; the others (about 5 s each) in the long form.
QUICK = {"committed", "trial-started"}


@pytest.mark.parametrize(
    "step",
    [pytest.param(step, marks=() if step in QUICK else pytest.mark.long) for step in STEPS],
)
def test_a_power_cut_at_each_install_step_leaves_a_good_build_and_one_outcome_report(
    step: str,
    repo: Repository,
    make_device: Callable[..., DeviceDir],
    hosts: Callable[..., RangeHost],
) -> None:
    publish(repo, "alpha", "2.0")
    host = hosts(repo.layout.public_dir)
    device = make_device(mirrors=[host.url])

    cut = run_agent(device, step)

    assert cut.returncode == POWER_CUT, cut.stderr
    expected_now = "2.0" if step in COMMITTED_BY_THE_CUT else "1.0"
    assert assert_boots_a_good_build(device) == expected_now

    after = run_agent(device, None)

    ending = STEPS[step]
    assert outcomes(device) == [ending], after.stdout + after.stderr
    state = load_state(device)
    assert state.trial is None
    assert state.pending is None
    if ending is ReportStatus.BOOTED_HEALTHY:
        assert after.returncode == 0, after.stderr
        assert assert_boots_a_good_build(device) == "2.0"
        assert state.active is Slot.B
    else:
        assert after.returncode != 0
        assert assert_boots_a_good_build(device) == "1.0"
        assert state.active is Slot.A
        assert state.refused_builds == ["2.0"]
    again = run_agent(device, None)
    assert outcomes(device) == [ending], again.stdout + again.stderr


#: Steps of a delta install: the patch being written into the inactive slot, the
#: result verified, the slot written, the boot slot switched to the trial.
DELTA_STEPS = ["delta-writing", "delta-verified", "delta-slot-written", "delta-armed"]


@pytest.mark.parametrize(
    "step",
    [pytest.param(s, marks=() if s == "delta-writing" else pytest.mark.long) for s in DELTA_STEPS],
)
def test_a_power_cut_during_a_delta_install_leaves_a_good_build_and_the_next_run_finishes(
    step: str,
    repo: Repository,
    make_device: Callable[..., DeviceDir],
    hosts: Callable[..., RangeHost],
) -> None:
    publish(repo, "alpha", "2.0")
    publish_delta(repo, "1.0", "2.0")
    host = hosts(repo.layout.public_dir)
    device = make_device(mirrors=[host.url])

    cut = run_agent(device, step)

    assert cut.returncode == POWER_CUT, cut.stderr
    assert assert_boots_a_good_build(device) == "1.0"

    after = run_agent(device, None)

    assert after.returncode == 0, after.stdout + after.stderr
    assert outcomes(device) == [ReportStatus.BOOTED_HEALTHY]
    assert assert_boots_a_good_build(device) == "2.0"
    state = load_state(device)
    assert (state.active, state.trial, state.pending) == (Slot.B, None, None)
    # Nothing the cut left half-written stays behind on the device.
    assert sorted(p.name for p in device.path.glob(".*.tmp")) == []
    assert sorted(p.name for p in device.path.glob("*.part")) == []
