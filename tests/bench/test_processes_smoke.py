"""The several-processes benchmark runs end to end in seconds: one and two server
processes behind nginx on one PostgreSQL."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "bench" / "processes.py"


def test_processes_benchmark_smoke() -> None:
    url = os.environ.get("PATCHLINE_TEST_DATABASE_URL")
    if not url:
        pytest.skip("PATCHLINE_TEST_DATABASE_URL is not set")
    name = f"patchline_processes_smoke_{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--json", "--database", name],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PATCHLINE_BENCH_DATABASE_URL": url},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    assert [r["processes"] for r in figures["runs"]] == [1, 2]
    for run in figures["runs"]:
        assert run["rps"] > 0
        assert run["non_2xx"] == 0
    assert figures["runs"][0]["direct_rps"] > 0
    assert figures["nginx_rps"] > 0
