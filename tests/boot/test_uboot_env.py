"""U-Boot's boot counting through its environment, with the real fw_printenv/fw_setenv
(Debian's libubootenv-tool) on a file-backed environment. U-Boot's side of each boot
(``bootcount`` raised while ``upgrade_available`` is 1, ``altbootcmd`` past
``bootlimit``) is played by ``uboot_boots`` exactly as docs/agent-boot.md wires it."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from patchline.agent import Agent, DeviceConfig, DeviceDir, HealthCheck, create_device
from patchline.agent.boot_uboot import UBootEnv
from patchline.agent.bootloader import BootTrial
from patchline.agent.real_boot import install_to_partition
from patchline.agent.reports import Outbox
from patchline.agent.state import SlotContent, load_state
from patchline.cli.main import cli, main
from patchline.clock import SystemClock
from patchline.errors import DeviceSetupError, InstallFailedError
from patchline.wire.device_api import ReportCode, ReportStatus, Slot
from tests.boot.scenario import sha256_of, uboot_setup
from tests.conftest import image_bytes

MiB = 1 << 20  # the slot partitions start at 1 MiB and 3 MiB


def uboot_boots(env: UBootEnv) -> Slot:
    """What U-Boot does at power-on with CONFIG_BOOTCOUNT_LIMIT and the environment
    bootcount: count the boot of an upgrade, run altbootcmd past the limit."""
    values = env.variables()
    slot = values["patchline_slot"]
    if values.get("upgrade_available") == "1":
        count = int(values.get("bootcount", "0")) + 1
        script = f"bootcount={count}\n"
        if count > int(values.get("bootlimit", "1")):
            # altbootcmd=setenv patchline_slot ${patchline_good}; saveenv; run bootcmd
            slot = values["patchline_good"]
            script += f"patchline_slot={slot}\n"
        subprocess.run(
            ["fw_setenv", "-c", str(env.config), "-s", "-"], input=script.encode(), check=True
        )
    return Slot(slot)


@pytest.fixture
def device(tmp_path: Path) -> tuple[DeviceDir, UBootEnv]:
    """A device with a GPT disk image (two slot partitions) and a U-Boot environment in a
    16 KiB file, both slots' builds known, A running and good."""
    for tool in ("fw_setenv", "fw_printenv", "sfdisk"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (.ci/packages.txt)")
    setup = uboot_setup(tmp_path)
    factory = tmp_path / "factory.img"
    factory.write_bytes(image_bytes("factory"))
    healthy = tmp_path / "healthy"
    made = create_device(
        tmp_path / "device",
        DeviceConfig(
            model="board",
            boot=setup,
            health=HealthCheck(command=["sh", "-c", f'test -e "{healthy}"']),
        ),
        shipped_root=b"{}",
        image=factory,
        build="2026.01",
        security_patch_level=date(2026, 1, 1),
    )
    healthy.touch()
    return made, UBootEnv(Path(setup.fw_env_config))


def install(device: DeviceDir, tmp_path: Path, build: str, tries: int) -> Slot:
    """Write ``build``'s image into the inactive slot partition and arm ``tries``."""
    image = tmp_path / f"{build}.img"
    image.write_bytes(image_bytes(build))
    state = load_state(device)
    staging = device.staging_file(state.inactive)
    shutil.copyfile(image, staging)
    content = SlotContent(build=build, sha256=sha256_of(image), security_patch_level="2026-02-01")
    setup = device.load_config().boot
    assert setup is not None
    install_to_partition(device, state, setup, staging, content, tries, "test")
    return state.inactive


def started(device: DeviceDir, slot: Slot) -> str:
    """`patchline agent boot` on a kernel command line naming ``slot``."""
    return Agent(device, clock=SystemClock()).started(f"root=PARTLABEL=patchline-{slot}").result


def test_a_trial_that_boots_healthy_is_kept_and_counting_stops(
    device: tuple[DeviceDir, UBootEnv], tmp_path: Path
) -> None:
    dev, env = device
    assert install(dev, tmp_path, "2026.02", tries=3) is Slot.B
    values = env.variables()
    assert (values["patchline_slot"], values["upgrade_available"], values["bootlimit"]) == (
        "b",
        "1",
        "3",
    )
    disk = Path(str(dev.load_config().boot.disk))  # type: ignore[union-attr]
    with disk.open("rb") as handle:  # the image is in partition patchline-b (2 MiB in)
        handle.seek(3 * MiB)
        assert handle.read(64 * 1024) == image_bytes("2026.02")

    assert uboot_boots(env) is Slot.B
    assert started(dev, Slot.B) == "committed"
    values = env.variables()
    assert (values["patchline_slot"], values["patchline_good"]) == ("b", "b")
    assert (values["upgrade_available"], values["bootcount"]) == ("0", "0")
    assert uboot_boots(env) is Slot.B
    assert [r.status for _, r in Outbox(dev.outbox).pending()][-1] is ReportStatus.BOOTED_HEALTHY


def test_u_boot_falls_back_after_the_set_tries_and_the_agent_reports_a_rollback(
    device: tuple[DeviceDir, UBootEnv], tmp_path: Path
) -> None:
    dev, env = device
    install(dev, tmp_path, "2026.02", tries=2)
    # Two boots that never reach the agent (a panic, a power cut), then the fallback.
    assert [uboot_boots(env) for _ in range(3)] == [Slot.B, Slot.B, Slot.A]
    trial = env.trial()
    assert trial is not None
    assert (trial.slot, trial.tries_left, trial.tries_done) == (Slot.B, 0, 2)
    outcome = Agent(dev, clock=SystemClock()).started("console=ttyS0 patchline.slot=a")
    assert (outcome.result, outcome.slot, outcome.tried_build) == ("rolled-back", Slot.A, "2026.02")
    report = [r for _, r in Outbox(dev.outbox).pending()][-1]
    assert (report.status, report.code) == (ReportStatus.ROLLED_BACK, ReportCode.BOOT_FAILED)
    assert "u-boot bootloader fell back to slot a after 2 failed tries of slot b" in report.detail
    values = env.variables()
    assert (values["patchline_slot"], values["upgrade_available"], values["bootcount"]) == (
        "a",
        "0",
        "0",
    )
    assert "patchline_trial" not in values
    assert uboot_boots(env) is Slot.A
    assert load_state(dev).refused_builds == ["2026.02"]


def test_a_trial_slot_that_fails_its_health_check_is_given_up_at_once(
    device: tuple[DeviceDir, UBootEnv], tmp_path: Path
) -> None:
    dev, env = device
    install(dev, tmp_path, "2026.02", tries=3)
    (tmp_path / "healthy").unlink()
    assert uboot_boots(env) is Slot.B
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("patchline.slot=b\n")
    runner = CliRunner()
    with runner.isolation() as streams:
        code = main(["agent", "boot", str(dev.path), "--cmdline", str(cmdline)])
    output = "".join(s.getvalue().decode() for s in streams[:2] if s is not None)
    assert code == 15, output  # the start-up unit reboots on 15 (docs/agent-boot.md)
    assert "build 2026.02 booted but is not healthy" in output
    assert "health check exited with 1" in output
    assert uboot_boots(env) is Slot.A  # the next boot goes back, no tries wasted
    assert started(dev, Slot.A) == "normal"
    assert env.trial() is None
    assert env.variables()["upgrade_available"] == "0"
    report = [r for _, r in Outbox(dev.outbox).pending()][-1]
    assert (report.status, report.code) == (
        ReportStatus.ROLLED_BACK,
        ReportCode.HEALTH_CHECK_FAILED,
    )


def test_an_image_larger_than_its_partition_is_refused_and_the_old_slot_still_boots(
    device: tuple[DeviceDir, UBootEnv], tmp_path: Path
) -> None:
    dev, env = device
    image = tmp_path / "huge.img"
    image.write_bytes(b"x" * (3 * MiB))
    staging = dev.staging_file(Slot.B)
    shutil.copyfile(image, staging)
    content = SlotContent(build="huge", sha256=sha256_of(image), security_patch_level="2026-02-01")
    setup = dev.load_config().boot
    assert setup is not None
    with pytest.raises(InstallFailedError, match="does not fit partition patchline-b"):
        install_to_partition(dev, load_state(dev), setup, staging, content, 3, "test")
    assert env.trial() is None
    assert uboot_boots(env) is Slot.A


def test_the_start_up_command_reads_the_booted_slot_and_reports_the_fallback(
    device: tuple[DeviceDir, UBootEnv], tmp_path: Path
) -> None:
    dev, env = device
    install(dev, tmp_path, "2026.02", tries=1)
    assert [uboot_boots(env) for _ in range(2)] == [Slot.B, Slot.A]
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("console=ttyS0 root=PARTLABEL=patchline-a rootwait\n")

    result = CliRunner().invoke(cli, ["agent", "boot", str(dev.path), "--cmdline", str(cmdline)])

    assert result.exit_code == 0, result.output
    assert "build 2026.02 failed (the u-boot bootloader fell back to slot a" in result.output
    assert "back on build 2026.01 in slot a" in result.output
    result = CliRunner().invoke(cli, ["agent", "boot", str(dev.path), "--cmdline", str(cmdline)])
    assert "booted slot a: build 2026.01" in result.output


def test_a_command_line_naming_no_slot_is_a_setup_error_and_changes_nothing(
    device: tuple[DeviceDir, UBootEnv], tmp_path: Path
) -> None:
    dev, env = device
    install(dev, tmp_path, "2026.02", tries=1)
    before = env.variables()
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("console=ttyS0 root=/dev/mmcblk0p2\n")

    runner = CliRunner()
    with runner.isolation() as streams:
        code = main(["agent", "boot", str(dev.path), "--cmdline", str(cmdline)])
    output = "".join(s.getvalue().decode() for s in streams[:2] if s is not None)

    assert code == 11, output
    assert "the kernel command line names no slot" in output
    assert env.variables() == before
    assert load_state(dev).trial is not None


def test_a_device_that_boots_for_real_is_never_rebooted_in_simulation(
    device: tuple[DeviceDir, UBootEnv], tmp_path: Path
) -> None:
    dev, env = device
    install(dev, tmp_path, "2026.02", tries=1)
    with pytest.raises(DeviceSetupError, match="boots for real"):
        Agent(dev, clock=SystemClock()).reboot()
    assert load_state(dev).trial is not None
    assert env.trial() == BootTrial(Slot.B, 1, 0)
