"""Install into a real slot partition, and finish a real boot: the bootloader counts the
tries, the agent arms the trial and marks the running slot good.

``install_to_partition`` (the update run): the image goes into the inactive slot's
partition (hashed, synced), its boot files where the bootloader reads them, then the
trial is armed: the last step, so a crash before it leaves the old slot booting.

``finish_boot`` (at start-up, ``patchline agent boot``): which slot runs is read from
the kernel command line. The trial slot running: health check, then mark good (or
mark bad: the next boot goes back). The other slot running while a trial was armed
and the bootloader has no tries left for it: the bootloader fell back by itself (a
panic, a hang, a power cut before the health check): a rollback, reported.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from patchline.agent.boot_grub import GrubEnv
from patchline.agent.boot_systemd import SystemdBoot
from patchline.agent.boot_uboot import UBootEnv
from patchline.agent.bootloader import Bootloader, booted_slot
from patchline.agent.device import BootSetup, DeviceConfig, DeviceDir
from patchline.agent.disk import find_partition, write_partition
from patchline.agent.esp import Esp, ImageEsp, MountedEsp
from patchline.agent.health import check_booted
from patchline.agent.slots import BootOutcome, forget_inactive, trial_ended
from patchline.agent.state import AgentState, SlotContent, TrialBoot, save_state
from patchline.errors import DeviceSetupError
from patchline.wire.device_api import Slot

BOOTLOADERS = ("systemd-boot", "grub", "u-boot")


def open_esp(setup: BootSetup) -> Esp:
    """The ESP: a partition of the disk image through mtools, or a mounted directory."""
    kind, sep, label = setup.esp.partition(":")
    if sep and kind == "partlabel":
        return ImageEsp(Path(setup.disk), find_partition(Path(setup.disk), label).offset)
    return MountedEsp(Path(setup.esp))


def open_bootloader(setup: BootSetup) -> Bootloader:
    """The bootloader back end ``setup`` names; DeviceSetupError for an unknown one."""
    if setup.bootloader == "systemd-boot":
        return SystemdBoot(open_esp(setup), kernel_options=setup.kernel_options)
    if setup.bootloader == "grub":
        return GrubEnv(open_esp(setup), setup.grubenv)
    if setup.bootloader == "u-boot":
        return UBootEnv(Path(setup.fw_env_config))
    raise DeviceSetupError(
        f"unknown bootloader {setup.bootloader!r}", hint=f"use one of {', '.join(BOOTLOADERS)}"
    )


def slot_labels(setup: BootSetup) -> dict[Slot, str]:
    """The GPT partition label of each slot."""
    return {Slot(name): label for name, label in setup.slot_labels.items() if name in ("a", "b")}


def install_to_partition(
    device: DeviceDir,
    state: AgentState,
    setup: BootSetup,
    staging: Path,
    content: SlotContent,
    attempts: int,
    source: str,
) -> AgentState:
    """Write the verified ``staging`` image into the inactive slot's partition and arm a
    trial of ``attempts`` boots. Raises InstallFailedError or DeviceSetupError; the
    old slot still boots then."""
    slot = state.inactive
    bootloader = open_bootloader(setup)
    state = forget_inactive(device, state)
    bootloader.forget(slot)
    disk = Path(setup.disk)
    write_partition(disk, find_partition(disk, slot_labels(setup)[slot]), staging, content.sha256)
    bootloader.install_boot_files(slot, staging)
    tries = max(attempts, 1)
    bootloader.arm_trial(slot, tries)
    state = msgspec.structs.replace(
        state,
        slots={**state.slots, slot.value: content},
        pending=None,
        trial=TrialBoot(slot, tries, source, False),
    )
    save_state(device, state)
    staging.unlink(missing_ok=True)
    return state


def running_slot(setup: BootSetup, cmdline: str) -> Slot:
    """The slot the kernel command line names; DeviceSetupError when it names none."""
    slot = booted_slot(cmdline, slot_labels(setup))
    if slot is None:
        raise DeviceSetupError(
            "the kernel command line names no slot",
            hint="boot with patchline.slot=a|b or root=PARTLABEL=<slot partition label>",
        )
    return slot


def finish_boot(
    device: DeviceDir, state: AgentState, config: DeviceConfig, setup: BootSetup, booted: Slot
) -> tuple[AgentState, BootOutcome]:
    """Settle the boot of slot ``booted``: commit a healthy trial, notice a fallback the
    bootloader took, or just mark a healthy committed slot good. A trial's end is saved
    with its report waiting in ``unreported_boot`` (one save), for the caller to queue."""
    bootloader = open_bootloader(setup)
    trial = state.trial
    if trial is None:
        return _settle_normal(device, state, config, bootloader, booted)
    tried = state.slots.get(trial.slot.value)
    tried_build = tried.build if tried else "?"
    if booted is trial.slot:
        problem = check_booted(config.health, booted)
        if problem is None:
            bootloader.mark_good(booted)
            outcome = BootOutcome(booted, tried_build, "committed", tried_build=tried_build)
            state = trial_ended(msgspec.structs.replace(state, active=booted), trial, outcome)
            save_state(device, state)
            return state, outcome
        bootloader.mark_bad(booted)
        outcome = BootOutcome(
            state.active,
            state.running.build,
            "rolled-back",
            f"{problem} (slot {booted.value} will not be booted again)",
            tried_build,
        )
        state = trial_ended(state, trial, outcome)
        save_state(device, state)
        return state, outcome
    armed = bootloader.trial()
    if armed is not None and armed.slot is trial.slot and armed.tries_left > 0:
        # The other slot was booted on purpose while the trial still has tries: wait.
        build = state.slots[booted.value].build if booted.value in state.slots else "?"
        return state, BootOutcome(booted, build, "normal")
    used = f"{armed.tries_done} failed tries" if armed is not None else "its failed tries"
    bootloader.forget(trial.slot)
    if booted.value in state.slots:
        state = msgspec.structs.replace(state, active=booted)
    outcome = BootOutcome(
        state.active,
        state.running.build,
        "rolled-back",
        f"the {bootloader.name} bootloader fell back to slot {booted.value} after {used} of "
        f"slot {trial.slot.value}: build {tried_build} never finished booting (a kernel "
        "panic, a hang or a power cut before its health check)",
        tried_build,
        boot_failed=True,
    )
    state = trial_ended(state, trial, outcome)
    save_state(device, state)
    return state, outcome


def _settle_normal(
    device: DeviceDir,
    state: AgentState,
    config: DeviceConfig,
    bootloader: Bootloader,
    booted: Slot,
) -> tuple[AgentState, BootOutcome]:
    if booted is not state.active and booted.value in state.slots:
        state = msgspec.structs.replace(state, active=booted)
        save_state(device, state)
    armed = bootloader.trial()
    if armed is not None and armed.slot is not booted:
        bootloader.forget(armed.slot)  # a trial given up on (its health check failed)
    if check_booted(config.health, booted) is None and bootloader.last_good() is not booted:
        bootloader.mark_good(booted)
    build = state.slots[booted.value].build if booted.value in state.slots else "?"
    return state, BootOutcome(booted, build, "normal")
