"""The check-in benchmark runs end to end in seconds (nginx, bare ASGI, the real server)."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench" / "checkin_rate.py"


def test_checkin_benchmark_smoke() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--json", "--servers", "uvicorn"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = json.loads(result.stdout)["runs"]
    assert {r["database"] for r in runs} == {"sqlite", "postgresql"}
    for run in runs:
        assert run["non_2xx"] == 0
        assert run["writer_failures"] == 0
        assert run["checkin_rps"] > 0
        assert run["nginx_rps"] > run["bare_rps"] > 0
        assert 500 < run["answer_bytes"] < 4096
