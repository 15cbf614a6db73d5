"""``patchline agent``: run a simulated device's update agent."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click
import msgspec
from rich.progress import TaskID
from rich.table import Table

from patchline.agent import Agent, DeviceConfig, DeviceDir, HealthCheck, create_device
from patchline.agent.enrollment import enroll
from patchline.agent.state import load_state
from patchline.cli.context import CliContext, pass_cli
from patchline.cli.progress import byte_progress
from patchline.clock import SystemClock
from patchline.errors import RolledBackError, UsageError
from patchline.transport.http import http_pool

DEVICE = click.argument("device", type=click.Path(file_okay=False, path_type=Path))


@click.group()
def agent() -> None:
    """Run a simulated device: find, verify, download, install, roll back, report.

    Exit codes: 0 done or up to date; 10 other agent error; 11 device directory not set
    up; 12 no update source reachable; 13 update found but refused; 14 install failed
    (e.g. no space); 15 the new build failed its health check and was rolled back;
    16 another agent is running on this device.
    """


@agent.command("init")
@DEVICE
@click.option("--model", required=True, help="Device model, e.g. aurora-5g.")
@click.option(
    "--root",
    "root_file",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The image repository root the device ships with (1.root.json).",
)
@click.option(
    "--image",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The factory image, written to slot A.",
)
@click.option("--build", required=True, help="The factory image's build.")
@click.option("--security-patch-level", "spl", required=True, help="YYYY-MM-DD.")
@click.option(
    "--director-root",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The director's root, when the device has a server.",
)
@click.option("--device-id", default="", help="Device id given at enrollment.")
@click.option("--credential", default="", help="<device_id>.<secret> given at enrollment.")
@click.option("--region", default=None, help="ISO 3166 region code.")
@click.option("--deployed-on", default=None, help="YYYY-MM-DD the device was deployed.")
@click.option("--server", default="", help="The server's base URL (device API).")
@click.option("--server-repository", default="", help="The image repository the server publishes.")
@click.option("--mirror", "mirrors", multiple=True, help="A mirror's base URL (repeatable).")
@click.option(
    "--bundle",
    "bundles",
    multiple=True,
    help="A folder (SD card, USB) to look for bundles in (repeatable).",
)
@click.option("--health-marker", default="", help="Bytes a healthy image must hold.")
@click.option(
    "--health-command",
    default="",
    help="A command that must exit 0 after boot (the slot image is its last argument).",
)
@pass_cli
def init_device(
    ctx: CliContext,
    device: Path,
    model: str,
    root_file: Path,
    image: Path,
    build: str,
    spl: str,
    director_root: Path | None,
    device_id: str,
    credential: str,
    region: str | None,
    deployed_on: str | None,
    server: str,
    server_repository: str,
    mirrors: tuple[str, ...],
    bundles: tuple[str, ...],
    health_marker: str,
    health_command: str,
) -> None:
    """Create a device directory running IMAGE from slot A."""
    try:
        patch_level = date.fromisoformat(spl)
        if deployed_on:
            date.fromisoformat(deployed_on)
    except ValueError as exc:
        raise UsageError(f"not a date: {exc}", hint="write dates as YYYY-MM-DD") from None
    config = DeviceConfig(
        model=model,
        device_id=device_id,
        credential=credential,
        region=region.upper() if region else None,
        deployed_on=deployed_on,
        server_url=server,
        server_repository_url=server_repository,
        bundles=list(bundles),
        mirrors=list(mirrors),
        health=HealthCheck(marker=health_marker, command=health_command.split()),
    )
    create_device(
        device,
        config,
        shipped_root=root_file.read_bytes(),
        image=image,
        build=build,
        security_patch_level=patch_level,
        director_root=director_root.read_bytes() if director_root else None,
    )
    ctx.console.print(f"device {device} created: model {model}, build {build} in slot A")


@agent.command("update")
@DEVICE
@click.option(
    "--bundle", "bundles", multiple=True, help="Also look in this folder first (repeatable)."
)
@click.option("--mirror", "mirrors", multiple=True, help="Also try this mirror (repeatable).")
@pass_cli
def update(
    ctx: CliContext, device: Path, bundles: tuple[str, ...], mirrors: tuple[str, ...]
) -> None:
    """Look for an update and install it; say what was tried and what happened."""
    directory = DeviceDir(device)
    if bundles or mirrors:
        config = directory.load_config()
        directory.save_config(
            msgspec.structs.replace(
                config,
                bundles=[*bundles, *config.bundles],
                mirrors=[*config.mirrors, *mirrors],
            )
        )
    with byte_progress(ctx.console) as progress:
        tasks: dict[str, TaskID] = {}

        def show(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(name.rsplit("/", 1)[-1], total=total)
            progress.update(tasks[name], completed=done)

        result = Agent(directory, clock=SystemClock(), on_progress=show).update()
    ctx.console.print(result.message, highlight=False)


@agent.command("boot")
@DEVICE
@click.option(
    "--cmdline",
    "cmdline_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="A device that boots for real: read the booted slot from this file instead of "
    "the configured one (/proc/cmdline).",
)
@pass_cli
def boot_device(ctx: CliContext, device: Path, cmdline_file: Path | None) -> None:
    """Settle a boot and say which build runs.

    A device that boots for real (device.json has a boot setup; run this at start-up):
    health check, mark the running slot good, and report a fallback the bootloader took
    as a rollback; exit 15 when the running build failed its health check (reboot: the
    bootloader goes back). A simulated device: simulate a reboot (finishing an
    interrupted install).
    """
    directory = DeviceDir(device)
    agent_ = Agent(directory, clock=SystemClock())
    if directory.load_config().boot is not None:
        cmdline = cmdline_file.read_text(errors="replace") if cmdline_file else None
        outcome = agent_.started(cmdline)
        if outcome.result == "rolled-back" and not outcome.boot_failed:
            raise RolledBackError(
                f"build {outcome.tried_build} booted but is not healthy: {outcome.reason}",
                hint=f"reboot: the bootloader boots build {outcome.build} from slot "
                f"{outcome.slot.value} again",
            )
    elif cmdline_file is not None:
        raise UsageError(
            "--cmdline is for a device that boots for real; this device is simulated",
            hint="drop --cmdline to simulate a reboot",
        )
    else:
        outcome = agent_.reboot()
    text = {
        "normal": f"booted slot {outcome.slot.value}: build {outcome.build}",
        "committed": f"build {outcome.build} booted healthy from slot {outcome.slot.value}",
        "rolled-back": f"build {outcome.tried_build} failed ({outcome.reason}); "
        f"back on build {outcome.build} in slot {outcome.slot.value}",
    }[outcome.result]
    ctx.console.print(text, highlight=False)


@agent.command("status")
@DEVICE
@pass_cli
def status(ctx: CliContext, device: Path) -> None:
    """Show the slots, what runs, and how many reports wait to be sent."""
    directory = DeviceDir(device)
    config = directory.load_config()
    state = load_state(directory)
    table = Table("slot", "build", "patch level", "state")
    for slot in ("a", "b"):
        content = state.slots.get(slot)
        mark = "active" if state.active.value == slot else ""
        if state.trial is not None and state.trial.slot.value == slot:
            mark = "installed, waiting for reboot"
        table.add_row(
            slot,
            content.build if content else "-",
            content.security_patch_level if content else "-",
            mark,
        )
    ctx.console.print(f"model {config.model}, device {config.device_id or '(not enrolled)'}")
    ctx.console.print(table)
    if state.pending is not None:
        ctx.console.print(
            f"download in progress: {state.pending.target} from {state.pending.source}"
        )
    ctx.console.print(
        f"{len(Agent(directory, clock=SystemClock()).outbox.pending())} report(s) queued"
    )


@agent.command("send-reports")
@DEVICE
@pass_cli
def send_reports(ctx: CliContext, device: Path) -> None:
    """Send queued reports to the server now."""
    sent = Agent(DeviceDir(device), clock=SystemClock()).send_reports()
    ctx.console.print(f"{sent} report(s) acknowledged by the server")


@agent.command("enroll")
@DEVICE
@click.option("--token", default=None, help="Fleet token (default: PATCHLINE_ENROLLMENT_TOKEN).")
@click.option("--serial", required=True, help="The device's serial number.")
@click.option("--hardware-id", required=True, help="A stable hardware identifier.")
@click.option("--carrier", default="", help="The device's carrier, if any.")
@pass_cli
def enroll_device(
    ctx: CliContext, device: Path, token: str | None, serial: str, hardware_id: str, carrier: str
) -> None:
    """Enroll the device with its server (once); the credential is kept in device.json."""
    if token is None:
        if ctx.settings.enrollment_token is None:
            raise click.MissingParameter(param_hint="'--token' (or PATCHLINE_ENROLLMENT_TOKEN)")
        token = ctx.settings.enrollment_token.get_secret_value()
    directory = DeviceDir(device)
    config = directory.load_config()
    pool = http_pool(config.limits.connect_timeout_seconds, config.limits.connect_timeout_seconds)
    device_id = enroll(
        directory, pool, token=token, serial=serial, hardware_id=hardware_id, carrier=carrier
    )
    ctx.console.print(f"Enrolled as device {device_id}.")
