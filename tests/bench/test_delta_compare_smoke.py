"""The delta comparison's synthetic part runs in seconds on a small generated pair."""

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench" / "delta_compare.py"


def test_delta_compare_synthetic_smoke() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--pairs", "", "--synthetic-mib", "4"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| ours, synthetic 4 MiB |" in result.stdout
