"""The publishing benchmark runs, in seconds, and its figures make sense."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench" / "publish_scale.py"


def test_publish_benchmark_smoke() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--releases", "80", "--models", "2", "--no-cli", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["releases"] == 80
    # A device downloads its model's newest builds only: a fraction of a flat role
    # holding every release, and no more after 80 releases than after 40.
    assert 0 < figures["ratio_cold_vs_flat"] < 0.3
    assert figures["ratio_cold_full_vs_half"] < 1.1
    assert figures["warm_refresh_bytes_after_own_release"] < figures["cold_refresh_bytes_one_model"]
    assert figures["publish_nth_s"] > 0
