"""The agent download benchmark runs end to end on a small file (needs nginx and curl,
listed in .ci/packages.txt)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench" / "agent_download.py"


def test_the_download_bench_measures_every_rate_and_both_ratios() -> None:
    spec = importlib.util.spec_from_file_location("agent_download", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["agent_download"] = module
    spec.loader.exec_module(module)
    rates = module.measure(8, 1)
    for name in ("curl-file", "curl-null", "sha256", "agent"):
        assert rates[name] > 1e6, name
    assert rates["ratio"] > 0
    assert rates["ratio-null"] > 0
