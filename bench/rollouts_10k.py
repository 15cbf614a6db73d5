"""Staged rollouts on a simulated fleet of 10,000 devices against a real server process.

Scenarios (each a fresh server and fleet, aurora 1.1 under rollout R-1, nimbus updates
offered to all):

- ``bad``: aurora 1.1 fails to boot on 20 % of devices; phases 1, 10, 50, 100 %. The
  rollback brake should halt it in phase 1, and no device outside phase 1's cohort
  install it.
- ``good``: nothing fails; phases 1, 10, 50, 100 % soaking 6 h each: it should reach
  every aurora device, each phase's cohort holding the one before.
- ``silent``: 10 % of aurora devices go silent after installing it; the silence brake
  (3 h) should halt it.

Usage: python bench/rollouts_10k.py [--devices 10000] [--scenarios bad,good,silent]
           [--database-url URL] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from patchline.settings import Settings
from patchline.simulate import BuildFailure, FailureModel, Offline, Simulation, SimulationOptions
from patchline.simulate.world import SimWorld

PHASES = [(1, 6), (10, 6), (50, 6), (100, 6)]
SCENARIOS: dict[str, tuple[dict[str, float], dict[str, Any], int]] = {
    "bad": ({"boot_failure": 0.2}, {}, 2),
    "good": ({}, {}, 2),
    "silent": ({"silent_after_install": 0.1}, {"silence_hours": 3}, 2),
}


def scenario(name: str, devices: int, database_url: str | None) -> dict[str, Any]:
    """Run one scenario; its figures."""
    aurora, brakes, days = SCENARIOS[name]
    failures = FailureModel(
        builds=(BuildFailure(model="aurora", build="1.1", **aurora),),
        rollback_reported=0.5,
        offline=Offline(0.0),
    )
    options = SimulationOptions(devices=devices, days=days, seed=11, failures=failures)
    body = {
        "model": "aurora",
        "build": "1.1",
        "phases": [{"percent": p, "soak_hours": h, "min_healthy": 5} for p, h in PHASES],
        "brakes": {"min_installs": 20, **brakes},
    }
    with tempfile.TemporaryDirectory(prefix="patchline-rollouts-") as tmp:
        world = SimWorld.create(
            Path(tmp) / "sim", options.start_instant, Settings(kdf_log2n=10), database_url
        )
        try:
            world.api("POST", "/api/rollouts", body)
            started = time.monotonic()
            simulation = Simulation(world, options, progress)
            report = simulation.run()
            wall = time.monotonic() - started
            shown = world.api("GET", "/api/rollouts/R-1")
            cohorts = [
                set(world.api("GET", f"/api/rollouts/R-1/cohort?phase={n}")["device_ids"])
                for n in range(1, len(PHASES) + 1)
            ]
        finally:
            world.close()
    took = {
        d.device_id for d in simulation.devices if d.model == "aurora" and "1.1" in d.installed_at
    }
    return {
        "scenario": name,
        "devices": devices,
        "wall_s": round(wall, 1),
        "check_ins": report.check_ins,
        "check_ins_per_second": round(report.check_ins_per_second, 1),
        "state": shown["state"],
        "phase": shown["phase"] + 1,
        "history": [
            {k: e[k] for k in ("at", "actor", "to_state", "phase", "reason")}
            for e in shown["history"]
        ],
        "figures": shown["figures"],
        "cohort_sizes": [len(c) for c in cohorts],
        "cohorts_nested": all(a <= b for a, b in itertools.pairwise(cohorts)),
        "installs": len(took),
        "installed_outside_last_phase_cohort": len(took - cohorts[shown["phase"]]),
        "agrees": report.agrees,
    }


def progress(line: str) -> None:
    """The simulation's running commentary, on standard error (standard output carries
    the results, JSON with --json)."""
    print(line, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--scenarios", default="bad,good,silent")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [scenario(s, args.devices, args.database_url) for s in args.scenarios.split(",")]
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for r in results:
        print(
            f"{r['scenario']:6} {r['devices']:,} devices: {r['state']} in phase {r['phase']} "
            f"after {r['wall_s']:.0f} s wall ({r['check_ins']:,} check-ins, "
            f"{r['check_ins_per_second']:.0f}/s); cohorts {r['cohort_sizes']} "
            f"nested={r['cohorts_nested']}; figures {r['figures']}"
        )
        for event in r["history"]:
            print(f"    {event['at']} {event['actor']} -> {event['to_state']}: {event['reason']}")


if __name__ == "__main__":
    main()
