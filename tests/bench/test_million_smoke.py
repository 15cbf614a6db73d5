"""The million-device benchmark runs end to end in seconds, on a few thousand devices:
COPY load, rollouts and rules, first check-ins, the hot set against nginx and the bare
floor, and the open-loop paced run."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "bench" / "million.py"


def test_million_benchmark_smoke() -> None:
    url = os.environ.get("PATCHLINE_TEST_DATABASE_URL")
    if not url:
        pytest.skip("PATCHLINE_TEST_DATABASE_URL is not set")
    name = f"patchline_million_smoke_{uuid.uuid4().hex[:8]}"
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
    assert figures["devices"] == 2000
    assert figures["copy_seconds"] > 0
    assert figures["sizes"]["devices_table"] > 0
    assert figures["known_requests"] > 0
    assert figures["rss_known"] > 0
    assert figures["non_2xx"] == 0
    assert figures["writer_failures"] == 0
    assert figures["nginx_rps"] > 0
    assert figures["bare_rps"] > 0
    assert figures["checkin_rps"] > 0
    paced = figures["paced"]
    assert paced["answered"] > 0
    assert paced["non_200"] == 0
    assert 0 < paced["p50_ms"] <= paced["p99_ms"] <= paced["max_ms"]
