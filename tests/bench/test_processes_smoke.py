"""The several-processes benchmark runs end to end in seconds: one and two server
processes behind nginx on one PostgreSQL."""

from tests.bench.postgres_smoke import smoke


def test_processes_benchmark_smoke() -> None:
    figures = smoke("processes.py")
    assert [r["processes"] for r in figures["runs"]] == [1, 2]
    for run in figures["runs"]:
        assert run["rps"] > 0
        assert run["non_2xx"] == 0
    assert figures["runs"][0]["direct_rps"] > 0
    assert figures["nginx_rps"] > 0
