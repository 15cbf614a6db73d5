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


def test_checkin_benchmark_with_rollouts_and_rules_smoke() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--smoke",
            "--json",
            "--servers",
            "uvicorn",
            "--databases",
            "sqlite",
            "--rollouts",
            "100",
            "--rules",
            "1000",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = json.loads(result.stdout)["runs"]
    assert run["with_rollouts_non_2xx"] == 0
    assert run["with_rollouts_rps"] > 0
    # Every device is told whether rollout R-1 of the build it is offered reached it.
    assert "rollout R-1 of alpha 1.1" in run["with_rollouts_answer"]
