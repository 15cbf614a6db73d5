"""The console pages benchmark runs end to end in seconds on a small fleet: COPY load,
decisions in the audit chain, a real server, every page timed (the rollout's figures
counted by PostgreSQL)."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

ROOT = Path(__file__).parents[2]
BENCH = ROOT / "bench" / "console_pages.py"


def test_console_pages_benchmark_smoke() -> None:
    url = os.environ.get("PATCHLINE_TEST_DATABASE_URL")
    if not url:
        pytest.skip("PATCHLINE_TEST_DATABASE_URL is not set")
    name = f"patchline_console_smoke_{uuid.uuid4().hex[:8]}"
    command = [sys.executable, str(BENCH), "--devices", "500", "--reports", "3000"]
    command += ["--decisions-per-device", "1", "--rounds", "1", "--json"]
    command += ["--database-url", url, "--bench-database", name]
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "PYTHONPATH": path},
        )
    finally:
        plain = make_url(url).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    assert (figures["devices"], figures["decisions"]) == (500, 500)
    pages = {p["page"]: p for p in figures["pages"]}
    assert {"rollout", "rollout (API)", "compliance", "device"} <= set(pages)
    assert all(0 < p["median_ms"] <= p["max_ms"] for p in pages.values())
    cohort = figures["cohort_count"]
    assert cohort["agree"], cohort
    assert cohort["figures"]["offered"] > 0
