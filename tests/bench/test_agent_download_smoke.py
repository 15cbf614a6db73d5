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
    # Memory does not grow with the image: 8 MiB through a ring of 1 MiB buffers.
    assert 0 < rates["agent-idle-rss"] <= rates["agent-peak-rss"]
    assert rates["agent-peak-rss"] - rates["agent-idle-rss"] < 64 << 20
