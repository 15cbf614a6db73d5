"""``patchline demo``: the whole system on this machine, narrated."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import click

from patchline.cli.context import CliContext, pass_cli
from patchline.demo.scenario import DEMO_PASSPHRASE, fleet_command, run_demo
from patchline.demo.story.fleet import FleetShape
from patchline.demo.story.story import run_story
from patchline.repository.passphrases import PassphraseSource


@click.command()
@click.option("--port", default=8000, show_default=True, help="Port of the demo's host.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".demo"),
    show_default=True,
    help="Where the demo keeps its data (wiped at start).",
)
@click.option("--no-wait", is_flag=True, help="Stop when the story ends instead of serving on.")
@click.option(
    "--fleet",
    type=click.IntRange(0, 100_000),
    default=300,
    show_default=True,
    help="Simulated phones run against the server once the story ends (0: none).",
)
@click.option(
    "--fleet-days",
    type=click.IntRange(1, 3650),
    default=45,
    show_default=True,
    help="How many simulated days the fleet runs.",
)
@click.option(
    "--story",
    type=click.Choice(["2018"]),
    help="Replay the 2018 story on simulated time instead: a ban, a licence, its lapse.",
)
@click.option(
    "--phones",
    type=click.IntRange(10, 100_000),
    default=1000,
    show_default=True,
    help="With --story: how many simulated phones.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="With --story: worker processes running the phones' agents (default: 3 per core).",
)
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --story: also write the report as JSON to this file.",
)
@pass_cli
def demo(
    cli: CliContext,
    port: int,
    workdir: Path,
    no_wait: bool,
    fleet: int,
    fleet_days: int,
    story: str | None,
    phones: int,
    workers: int | None,
    report_file: Path | None,
) -> None:
    """Run the server with signed releases and phones updating through it, narrated.

    With --story 2018, replay the origin story instead: the maker's servers go dark,
    mirrors and SD cards carry on, a denial order, a narrow licence and its lapse, with
    PHONES simulated phones running the real agent, and a report of who got what, from
    where, under which rule. Exits 1 if a target is missed or any install was out of scope.
    """
    if story:
        _story(cli, port, workdir, phones, workers, report_file)
        return
    demo = run_demo(workdir, port, cli.console.print, cli.settings)
    simulation: subprocess.Popen[bytes] | None = None
    try:
        if no_wait:
            return
        if fleet:
            log = workdir / "simulate.log"
            with log.open("wb") as out:
                simulation = subprocess.Popen(
                    fleet_command(demo, fleet, fleet_days), stdout=out, stderr=subprocess.STDOUT
                )
            cli.console.print(
                f"\n{fleet} simulated phones now run {fleet_days} simulated days against the "
                f"server, moving its clock (log: {log})."
            )
        cli.console.print(
            f"\n[bold]The console: {demo.server_url}/[/] (sign in with the management token "
            f"above: {demo.api_token}, role admin).\n"
            f"Serving {demo.server_url}: API docs at /docs, the signed repository at "
            "/repository/. Ctrl-C to stop."
        )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        cli.console.print("Stopped.")
    finally:
        if simulation is not None and simulation.poll() is None:
            simulation.terminate()
            simulation.wait(timeout=20)
        demo.stop_server()


def _story(
    cli: CliContext,
    port: int,
    workdir: Path,
    phones: int,
    workers: int | None,
    report_file: Path | None,
) -> None:
    env = dict(os.environ)
    env.setdefault("PATCHLINE_PASSPHRASE", DEMO_PASSPHRASE)
    started = time.monotonic()
    report = run_story(
        workdir,
        port=port,
        say=cli.console.print,
        settings=cli.settings,
        passphrases=PassphraseSource(env, interactive=False),
        shape=FleetShape(size=phones),
        workers=workers,
    )
    if report_file is not None:
        report_file.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    cli.console.print(
        f"[bold]Done in {time.monotonic() - started:.0f} s.[/] Installs outside the rules: "
        f"{len(report.out_of_scope)}; targets {'met' if report.targets_met else 'NOT met'}; "
        f"{report.receipts_waiting} signed receipts of offline installs wait on phones."
    )
    if report.out_of_scope or not report.targets_met:
        raise SystemExit(1)
