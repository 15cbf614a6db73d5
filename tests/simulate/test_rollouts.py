"""Staged rollouts against a simulated fleet on a real server process: a build that fails
to boot on 20 % of devices halts itself in its first phase and never reaches a device
outside that phase's cohort; a good build reaches 100 %, each phase's cohort holding the
one before; a build after which 10 % of devices go silent is halted by the silence brake.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from patchline.settings import Settings
from patchline.simulate import BuildFailure, FailureModel, Offline, Simulation, SimulationOptions
from patchline.simulate.device import SimDevice
from patchline.simulate.world import SimWorld

pytestmark = pytest.mark.long  # minutes: `make test-long`

DEVICES = 1000


def failures(**aurora: float) -> FailureModel:
    """Aurora 1.1 fails as told; nothing else fails; no device is offline."""
    return FailureModel(
        builds=(BuildFailure(model="aurora", build="1.1", **aurora),),
        rollback_reported=0.5,
        offline=Offline(0.0),
    )


def rollout_body(phases: list[tuple[float, float]], **brakes: Any) -> dict[str, Any]:
    return {
        "model": "aurora",
        "build": "1.1",
        "phases": [{"percent": p, "soak_hours": h, "min_healthy": 5} for p, h in phases],
        "brakes": {"min_installs": 20, **brakes},
    }


def run(
    tmp_path: Path, database_url: str, model: FailureModel, body: dict[str, Any], days: int
) -> tuple[dict[str, Any], list[SimDevice], list[list[str]]]:
    """Start a server, a rollout of aurora 1.1, run the fleet; the rollout as shown at
    the end, the aurora devices, and each phase's cohort (device ids)."""
    options = SimulationOptions(devices=DEVICES, days=days, seed=3, concurrency=32, failures=model)
    world = SimWorld.create(
        tmp_path / "sim", options.start_instant, Settings(kdf_log2n=10), database_url
    )
    try:
        created = world.api("POST", "/api/rollouts", body)
        assert created["id"] == "R-1"
        assert created["state"] == "active"
        simulation = Simulation(world, options, lambda _line: None)
        simulation.run()
        shown = world.api("GET", "/api/rollouts/R-1")
        cohorts = [
            world.api("GET", f"/api/rollouts/R-1/cohort?phase={n}")["device_ids"]
            for n in range(1, len(body["phases"]) + 1)
        ]
    finally:
        world.close()
    return shown, [d for d in simulation.devices if d.model == "aurora"], cohorts


def installed(devices: list[SimDevice]) -> dict[str, datetime]:
    return {d.device_id: d.installed_at["1.1"] for d in devices if "1.1" in d.installed_at}


def test_a_build_failing_on_a_fifth_of_devices_halts_itself_in_its_first_phase(
    tmp_path: Path, database_url: str
) -> None:
    body = rollout_body([(10, 48), (50, 24), (100, 24)])
    shown, aurora, cohorts = run(tmp_path, database_url, failures(boot_failure=0.2), body, 2)

    assert shown["state"] == "halted"
    assert shown["phase"] == 0
    halts = [e for e in shown["history"] if e["to_state"] == "halted"]
    assert len(halts) == 1
    assert halts[0]["actor"] == "server:brakes"
    assert halts[0]["reason"].startswith("rollback rate")
    assert halts[0]["figures"]["rolled_back"] > 0
    # Phase 1 reached about a tenth of the aurora devices, and no device outside it
    # ever installed the build.
    first = set(cohorts[0])
    assert 0.05 * len(aurora) < len(first) < 0.15 * len(aurora)
    took = installed(aurora)
    assert took
    assert set(took) <= first
    # Every aurora device still runs 1.0 or rolled back, but for the phase's devices.
    assert all(d.running.build == "1.0" for d in aurora if d.device_id not in first)


def test_a_good_build_reaches_every_device_phase_by_phase(
    tmp_path: Path, database_url: str
) -> None:
    body = rollout_body([(5, 6), (25, 6), (100, 6)])
    shown, aurora, cohorts = run(tmp_path, database_url, failures(), body, 2)

    assert shown["state"] == "completed", shown["history"]
    assert [e["to_state"] for e in shown["history"]] == [
        "active",
        "active",
        "active",
        "completed",
    ]
    # Widening only adds devices, checked by device id.
    first, second, third = (set(c) for c in cohorts)
    assert first < second < third
    assert third == {d.device_id for d in aurora}
    # Each device installed the build while the phase in force covered it.
    starts = [
        datetime.fromisoformat(e["at"]).replace(tzinfo=UTC)
        for e in shown["history"]
        if e["to_state"] == "active"
    ]
    took = installed(aurora)
    for device_id, at in took.items():
        phase = sum(1 for s in starts if s <= at) - 1
        assert device_id in set(cohorts[phase]), (device_id, at, phase)
    early = {i for i, at in took.items() if at < starts[1]}
    assert early
    assert early <= first
    assert len(took) >= 0.95 * len(aurora)


def test_a_build_after_which_a_tenth_goes_silent_is_halted_by_the_silence_brake(
    tmp_path: Path, database_url: str
) -> None:
    body = rollout_body([(20, 48), (100, 24)], silence_hours=3, max_silence_rate=0.05)
    model = failures(silent_after_install=0.1)
    shown, aurora, cohorts = run(tmp_path, database_url, model, body, 2)

    assert shown["state"] == "halted"
    halts = [e for e in shown["history"] if e["to_state"] == "halted"]
    assert len(halts) == 1
    assert halts[0]["reason"].startswith("silence rate"), halts[0]
    assert set(installed(aurora)) <= set(cohorts[0])
