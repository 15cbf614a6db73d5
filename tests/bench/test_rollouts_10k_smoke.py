"""The staged-rollouts benchmark runs end to end on a small fleet (100 devices, two
simulated days: seconds), its results alone on standard output."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench" / "rollouts_10k.py"


def test_rollouts_benchmark_smoke() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--devices", "100", "--scenarios", "bad", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = json.loads(result.stdout)
    assert run["agrees"]
    assert run["cohorts_nested"]
    assert run["installed_outside_last_phase_cohort"] == 0
