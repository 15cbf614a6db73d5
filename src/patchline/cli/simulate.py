"""``patchline simulate``: a simulated fleet against a real server, on shared simulated time."""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import click

from patchline.cli.context import CliContext, pass_cli
from patchline.errors import UsageError
from patchline.simulate import FailureModel, Simulation, SimulationOptions, SimWorld
from patchline.simulate.device import Fetch
from patchline.simulate.failures import DEFAULT_FAILURES


@click.command()
@click.option("--devices", type=click.IntRange(1, 1_000_000), default=1000, show_default=True)
@click.option("--days", type=click.IntRange(1, 3650), default=3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same run.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 4096),
    default=64,
    show_default=True,
    help="Device calls in flight at once.",
)
@click.option(
    "--start",
    type=click.DateTime(["%Y-%m-%d"]),
    default="2026-03-02",
    show_default=True,
    help="The first simulated day.",
)
@click.option(
    "--poll-hours",
    type=click.FloatRange(0.25, 168),
    default=6.0,
    show_default=True,
    help="Hours between a device's check-ins (jittered by 25%).",
)
@click.option(
    "--fetch",
    type=click.Choice([f.value for f in Fetch]),
    default=Fetch.RANGE.value,
    show_default=True,
    help="What a device downloads of an offered target: its first KiB, a HEAD, nothing.",
)
@click.option(
    "--failures",
    "failures_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The failure model as TOML (default: 5% fail to boot, 1% go silent, half the "
    "rollbacks reported, 5% offline 1-3 days).",
)
@click.option(
    "--server",
    "server_url",
    help="Use this running server; it must read --clock-file as its "
    "PATCHLINE_SIMULATED_CLOCK_FILE.",
)
@click.option("--clock-file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--enrollment-token", envvar="PATCHLINE_ENROLLMENT_TOKEN")
@click.option("--api-token", envvar="PATCHLINE_API_TOKEN", help="An admin token of --server.")
@click.option(
    "--home",
    "home",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Serve this home (repository, director, rules, database) instead of a new one.",
)
@click.option(
    "--database-url",
    envvar="PATCHLINE_DATABASE_URL",
    help="The server's database (default: SQLite in the work folder, or the home's).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the new home, clock file and server log go (default: a temporary folder, "
    "removed at the end).",
)
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the report as JSON to this file.",
)
@pass_cli
def simulate(
    cli: CliContext,
    devices: int,
    days: int,
    seed: int,
    concurrency: int,
    start: datetime,
    poll_hours: float,
    fetch: str,
    failures_file: Path | None,
    server_url: str | None,
    clock_file: Path | None,
    enrollment_token: str | None,
    api_token: str | None,
    home: Path | None,
    database_url: str | None,
    workdir: Path | None,
    report_file: Path | None,
) -> None:
    """Run DEVICES simulated devices for DAYS simulated days against a real server.

    Devices enroll, check in on their own schedule, install what they are offered, reboot
    and report; some fail to boot and roll back (reported or not), some go silent, some
    are offline for days, as the failure model says. The server tells time from the
    simulation's clock. Prints each day's tallies, then compares every device's install
    state with the server's view; exits 1 when they disagree.
    """
    options = SimulationOptions(
        devices=devices,
        days=days,
        seed=seed,
        concurrency=concurrency,
        start=start.date(),
        failures=FailureModel.load(failures_file) if failures_file else DEFAULT_FAILURES,
        poll_interval=timedelta(hours=poll_hours),
        fetch=Fetch(fetch),
    )
    if server_url and home:
        raise UsageError("give --server or --home, not both")
    scratch = None
    if workdir is None:
        scratch = Path(tempfile.mkdtemp(prefix="patchline-simulate-"))
        workdir = scratch
    try:
        world = _world(
            cli,
            options,
            server_url,
            clock_file,
            enrollment_token,
            api_token,
            home,
            database_url,
            workdir,
        )
        try:
            report = Simulation(world, options, cli.console.print).run()
        finally:
            world.close()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if report_file is not None:
        report_file.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    cli.console.print(report.summary())
    if not report.agrees:
        raise SystemExit(1)


def _world(
    cli: CliContext,
    options: SimulationOptions,
    server_url: str | None,
    clock_file: Path | None,
    enrollment_token: str | None,
    api_token: str | None,
    home: Path | None,
    database_url: str | None,
    workdir: Path,
) -> SimWorld:
    if server_url:
        if not (clock_file and enrollment_token and api_token):
            raise UsageError(
                "--server needs --clock-file, --enrollment-token and --api-token",
                hint="start that server with PATCHLINE_SIMULATED_CLOCK_FILE=<the clock file>",
            )
        return SimWorld.remote(server_url, clock_file, enrollment_token, api_token)
    if home:
        return SimWorld.on_home(home, workdir, options.start_instant, database_url)
    if (workdir / "home").exists():
        raise UsageError(
            f"{workdir} already holds a simulation's home", hint="pick another --workdir"
        )
    cli.console.print(f"Making a signed repository and a server in {workdir} ...")
    return SimWorld.create(workdir, options.start_instant, cli.settings, database_url)
