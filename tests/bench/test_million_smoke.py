"""The million-device benchmark runs end to end in seconds, on a few thousand devices:
COPY load, rollouts and rules, first check-ins, the hot set against nginx and the bare
floor, and the open-loop paced run."""

from tests.bench.postgres_smoke import smoke


def test_million_benchmark_smoke() -> None:
    figures = smoke("million.py")
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
