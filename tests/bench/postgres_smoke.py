"""Running a PostgreSQL benchmark's smoke form in a throwaway database of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

BENCHES = Path(__file__).parents[2] / "bench"


def smoke(script: str) -> dict[str, Any]:
    """``bench/SCRIPT --smoke --json`` on the test PostgreSQL server, in a database named
    for this run (created and dropped by the bench); its figures. Skips when
    ``PATCHLINE_TEST_DATABASE_URL`` is unset."""
    url = os.environ.get("PATCHLINE_TEST_DATABASE_URL")
    if not url:
        pytest.skip("PATCHLINE_TEST_DATABASE_URL is not set")
    name = f"patchline_{Path(script).stem}_smoke_{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        [sys.executable, str(BENCHES / script), "--smoke", "--json", "--database", name],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PATCHLINE_BENCH_DATABASE_URL": url},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures
