"""A simulated fleet against a real server process on the simulation's clock: the
server's view of every device matches what the simulator did to it, the failure model's
shares come out within binomial tolerance, and a fleet of 2,000 runs a day in bounded
time."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from patchline.cli.main import main
from patchline.settings import Settings
from patchline.simulate import BuildFailure, FailureModel, Offline, Simulation, SimulationOptions
from patchline.simulate.device import Phase
from patchline.simulate.world import SimWorld

START = date(2026, 3, 2)
FAILURES = FailureModel(
    builds=(
        BuildFailure(model="aurora", build="1.1", boot_failure=0.2, silent_after_install=0.05),
        BuildFailure(model="nimbus", boot_failure=0.05, silent_after_install=0.0),
    ),
    rollback_reported=0.5,
    offline=Offline(0.1, (1, 2)),
)


def within(successes: int, trials: int, share: float, sigmas: float = 4.0) -> bool:
    """Whether ``successes`` of ``trials`` is within ``sigmas`` binomial deviations of
    ``share`` (plus one, for small counts)."""
    spread = sigmas * math.sqrt(trials * share * (1 - share)) + 1
    return abs(successes - trials * share) <= spread


def test_a_small_fleet_leaves_the_server_seeing_what_the_simulator_did(
    tmp_path: Path, database_url: str
) -> None:
    options = SimulationOptions(devices=200, days=3, seed=7, concurrency=16, failures=FAILURES)
    world = SimWorld.create(
        tmp_path / "sim", options.start_instant, Settings(kdf_log2n=10), database_url
    )
    try:
        simulation = Simulation(world, options, lambda _line: None)
        report = simulation.run()
        rows = world.api("GET", "/api/devices?page_size=1000")["devices"]
        rolled_back = world.api("GET", "/api/devices?install_state=rolled-back&page_size=1000")
    finally:
        world.close()
    devices = simulation.devices
    ours = {d.device_id for d in devices}
    server = {row["id"]: row for row in rows if row["id"] in ours}

    # Every device, as the server sees it, is in the state the simulator left it in.
    assert len(server) == 200
    assert report.agrees, report.mismatches
    assert report.server_states == report.expected_states
    assert {i: r["install_state"] or "none" for i, r in server.items()} == {
        d.device_id: d.expected_state for d in devices
    }
    # Every rollback the simulator caused, reported or silent, is a rollback to the server.
    caused = {d.device_id for d in devices if d.rolled_back}
    assert caused == {row["id"] for row in rolled_back["devices"] if row["id"] in ours}
    silent = sum(d.rollbacks_silent for d in report.days)
    reported = sum(d.rollbacks_reported for d in report.days)
    assert silent > 0
    assert reported > 0
    assert silent + reported == len(caused)
    # The server told time by the simulation's clock, not the machine's.
    end = options.start_instant + timedelta(days=3)
    seen = [datetime.fromisoformat(r["last_seen_at"]) for r in server.values()]
    assert all(options.start_instant <= s.astimezone(UTC) < end for s in seen)
    # The builds the devices run, as the simulator counts them, and as the server last
    # heard (a device gone silent after installing never said it runs the new build).
    assert report.days[-1].builds == Counter(f"{d.model}/{d.running.build}" for d in devices)
    last_said = {
        d.device_id: d.inactive_build if d.phase is Phase.SILENT else d.running.build
        for d in devices
    }
    assert {i: r["build"] for i, r in server.items()} == last_said


@pytest.mark.long
def test_the_failure_shares_land_within_binomial_tolerance(tmp_path: Path) -> None:
    options = SimulationOptions(devices=600, days=2, seed=3, concurrency=32, failures=FAILURES)
    world = SimWorld.create(tmp_path / "sim", options.start_instant, Settings(kdf_log2n=10))
    try:
        simulation = Simulation(world, options, lambda _line: None)
        report = simulation.run()
    finally:
        world.close()
    assert report.agrees, report.mismatches
    for model, share_failing, share_silent in (("aurora", 0.2, 0.05), ("nimbus", 0.05, 0.0)):
        fleet = [d for d in simulation.devices if d.model == model]
        installed = [d for d in fleet if d.expected_state != "none"]
        failed = [d for d in installed if d.rolled_back]
        went_silent = [d for d in installed if d.expected_state == "installed"]
        assert len(installed) > 0.8 * len(fleet)
        assert within(len(failed), len(installed), share_failing), (model, len(failed))
        assert within(len(went_silent), len(installed), share_silent), (model, len(went_silent))
    failures = sum(d.boot_failures for d in report.days)
    reported = sum(d.rollbacks_reported for d in report.days)
    assert within(reported, failures, 0.5)
    offline = [d for d in simulation.devices if d.offline_from is not None]
    assert within(len(offline), 600, 0.1)
    installs = sum(d.installs for d in report.days)
    healthy = sum(d.booted_healthy for d in report.days)
    silent = sum(d.went_silent for d in report.days)
    assert installs == healthy + failures + silent


@pytest.mark.long
def test_two_thousand_devices_run_a_day_in_bounded_time(tmp_path: Path) -> None:
    options = SimulationOptions(devices=2000, days=1, seed=1, concurrency=64)
    world = SimWorld.create(tmp_path / "sim", options.start_instant, Settings(kdf_log2n=10))
    started = time.monotonic()
    try:
        report = Simulation(world, options, lambda _line: None).run()
    finally:
        world.close()
    seconds = time.monotonic() - started
    assert report.agrees, report.mismatches
    assert report.days[0].check_ins > 2000 * 3  # every 6 hours, jittered, less offline
    assert report.days[0].errors == 0
    # Seconds on a quiet machine (enrollment and a day together); the bound leaves room
    # for a loaded one.
    assert seconds < 240, f"{seconds:.0f} s"


def test_the_command_runs_a_seeded_fleet_the_same_way_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failures = tmp_path / "failures.toml"
    failures.write_text(
        "rollback_reported = 0.5\n[offline]\nshare = 0.1\ndays = [1, 2]\n"
        '[[build]]\nmodel = "*"\nboot_failure = 0.3\nsilent_after_install = 0.1\n'
    )
    runs = []
    for run in ("one", "two"):
        argv = ["simulate", "--devices", "60", "--days", "2", "--seed", "5"]
        argv += ["--failures", str(failures), "--workdir", str(tmp_path / run)]
        assert main([*argv, "--report", str(tmp_path / f"{run}.json")]) == 0
        assert "the server agrees on every device" in capsys.readouterr().out
        runs.append(json.loads((tmp_path / f"{run}.json").read_text()))
    for report in runs:
        assert report.pop("enroll_seconds") >= 0
        assert report.pop("check_ins_per_second") > 0
        for day in report["days"]:
            assert day.pop("seconds") > 0
            # How often the server answers "install" depends on when its batch writer
            # commits a report against the device's next check-in: the server's timing,
            # not the seed. What the devices do is the seed's.
            assert day.pop("offers") >= day["installs"]
    assert runs[0] == runs[1]
    assert runs[0]["failures"]["build"][0]["boot_failure"] == 0.3
    assert runs[0]["install_states"]["mismatches"] == 0
