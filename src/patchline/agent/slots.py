"""A/B slots: write a verified image into the inactive slot, boot, check, commit or
roll back.

The simulated bootloader tries a newly installed slot a limited number of times
(``TrialBoot.attempts_left``, decremented and saved before each try); the slot becomes
the active one only after its health check passes. A crash or kill -9 at any point
leaves state.json naming a slot that boots: the old one until the commit.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import msgspec

from patchline.agent.device import DeviceConfig, DeviceDir
from patchline.agent.health import check_health
from patchline.agent.state import AgentState, BootReport, SlotContent, TrialBoot, save_state
from patchline.delta import apply_delta
from patchline.errors import InstallFailedError
from patchline.fsutil import fsync_dir
from patchline.wire.device_api import Slot


@dataclass(frozen=True)
class BootOutcome:
    """What one simulated boot did."""

    slot: Slot
    build: str
    #: "normal": booted the committed slot; "committed": a new build booted healthy;
    #: "rolled-back": a new build failed and the old slot runs again.
    result: str
    reason: str = ""
    tried_build: str = ""
    #: The tried build never came up (the bootloader gave up on it): a boot failure,
    #: not a failed health check.
    boot_failed: bool = False


def forget_inactive(device: DeviceDir, state: AgentState) -> AgentState:
    """Mark the inactive slot as holding nothing usable before it is overwritten, and
    drop what an earlier write into it left half done (a power cut while a delta was
    being applied leaves its temporary file beside the slot)."""
    slots = {k: v for k, v in state.slots.items() if k != state.inactive.value}
    state = _replace(state, slots=slots, trial=None)
    save_state(device, state)
    image = device.slot_image(state.inactive)
    for leftover in image.parent.glob(f".{image.name}.*.tmp"):
        leftover.unlink(missing_ok=True)
    return state


def install_image(
    device: DeviceDir,
    state: AgentState,
    staging: Path,
    content: SlotContent,
    attempts: int,
    source: str,
    *,
    delta: bool = False,
) -> AgentState:
    """Move the verified ``staging`` file into the inactive slot and arrange a trial boot."""
    slot = state.inactive
    state = forget_inactive(device, state)
    try:
        fd = os.open(staging, os.O_RDONLY)  # durable before it becomes the slot
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(staging, device.slot_image(slot))
        fsync_dir(device.path)
    except OSError as exc:
        raise InstallFailedError(f"cannot write slot {slot.value}: {exc.strerror}") from None
    return _arm(device, state, slot, content, attempts, source, delta)


def install_delta(
    device: DeviceDir,
    state: AgentState,
    patch: Path,
    content: SlotContent,
    length: int,
    attempts: int,
    source: str,
) -> AgentState:
    """Rebuild the new image into the inactive slot from the active one and ``patch``.

    Raises DeltaError (the patch does not fit or does not produce the signed image);
    the inactive slot is then left unusable and the caller falls back to the full image.
    """
    slot = state.inactive
    state = forget_inactive(device, state)
    apply_delta(
        device.slot_image(state.active),
        patch,
        device.slot_image(slot),
        expected_sha256=content.sha256,
        expected_length=length,
    )
    patch.unlink(missing_ok=True)
    return _arm(device, state, slot, content, attempts, source, True)


def boot(
    device: DeviceDir, state: AgentState, config: DeviceConfig
) -> tuple[AgentState, BootOutcome]:
    """Simulate a reboot: try the trial slot if one is armed, run the health check,
    commit it, or fall back to the committed slot.

    The commit or rollback is saved together with ``unreported_boot`` (and a failed
    build joins ``refused_builds`` in the same save), so its report survives a power cut."""
    trial = state.trial
    if trial is None:
        return state, BootOutcome(state.active, state.running.build, "normal")
    tried = state.slots.get(trial.slot.value)
    tried_build = tried.build if tried else "?"
    if trial.attempts_left <= 0 or tried is None:
        outcome = BootOutcome(
            state.active,
            state.running.build,
            "rolled-back",
            f"build {tried_build} did not come up (the last boot attempt never finished)",
            tried_build,
        )
        state = trial_ended(state, trial, outcome)
        save_state(device, state)
        return state, outcome
    state = _replace(
        state, trial=TrialBoot(trial.slot, trial.attempts_left - 1, trial.source, trial.delta)
    )
    save_state(device, state)
    problem = check_health(config.health, device.slot_image(trial.slot))
    if problem is None:
        outcome = BootOutcome(trial.slot, tried_build, "committed", tried_build=tried_build)
        state = trial_ended(_replace(state, active=trial.slot), trial, outcome)
        save_state(device, state)
        return state, outcome
    outcome = BootOutcome(state.active, state.running.build, "rolled-back", problem, tried_build)
    state = trial_ended(state, trial, outcome)
    save_state(device, state)
    return state, outcome


def trial_ended(state: AgentState, trial: TrialBoot, outcome: BootOutcome) -> AgentState:
    """``state`` with the trial over and its outcome waiting to be reported (under a
    report id of its own; a build that failed joins ``refused_builds``): saved in one
    ``save_state`` with the commit or rollback, no power cut can lose the report."""
    refused = state.refused_builds
    if outcome.result == "rolled-back":
        refused = sorted({*refused, outcome.tried_build})
    report = BootReport(
        report_id=str(uuid.uuid4()),
        result=outcome.result,
        build=outcome.build,
        tried_build=outcome.tried_build,
        reason=outcome.reason,
        boot_failed=outcome.boot_failed,
        source=trial.source,
        delta=trial.delta,
    )
    return _replace(state, trial=None, refused_builds=refused, unreported_boot=report)


def _arm(
    device: DeviceDir,
    state: AgentState,
    slot: Slot,
    content: SlotContent,
    attempts: int,
    source: str,
    delta: bool,
) -> AgentState:
    slots = {**state.slots, slot.value: content}
    state = _replace(
        state, slots=slots, pending=None, trial=TrialBoot(slot, max(attempts, 1), source, delta)
    )
    save_state(device, state)
    return state


def _replace(state: AgentState, **changes: object) -> AgentState:
    return msgspec.structs.replace(state, **changes)
