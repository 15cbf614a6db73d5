"""The simulated-day benchmark runs end to end in seconds, on 2,000 devices: the fleet
loaded with yesterday's decisions, the day's paced check-ins, a release published through
the API and the release hour's changed decisions, install reports, the hot-set
reference, and the server's peak memory."""

from tests.bench.postgres_smoke import smoke


def test_fleet_day_benchmark_smoke() -> None:
    figures = smoke("fleet_day.py")
    day, hour, reports = figures["day"], figures["release_hour"], figures["reports"]
    assert day["devices"] == 1800
    assert day["answered"] == 1800
    assert day["non_200"] == 0
    assert hour["devices"] == 200
    assert hour["answered"] == 200
    assert hour["non_200"] == 0
    # Every device of the release hour got, and had recorded, a decision offering 1.2;
    # none of the day's devices did (they asked before it was published).
    assert figures["assigned_1_2"] == 200
    assert reports["sent"] == 100
    assert reports["refused"] == 0
    assert reports["stored"] == 100
    assert figures["rss_peak"] >= figures["rss_start"] > 0
    assert day["cpu_s_per_million"] > 0
    assert figures["hot_cpu_us_per_checkin"] > 0
    assert figures["writer_failures"] == 0
