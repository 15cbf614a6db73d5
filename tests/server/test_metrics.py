"""The check-in counter is exposed in Prometheus' format with its labels."""

from __future__ import annotations

from prometheus_client import generate_latest

from patchline.server.metrics import Metrics


def test_checkins_are_counted_by_action() -> None:
    metrics = Metrics()
    for action in ("none", "install", "none"):
        metrics.count_checkin(action)
    text = generate_latest(metrics.registry).decode()
    assert "# TYPE patchline_checkins_total counter" in text
    assert 'patchline_checkins_total{action="install"} 1.0' in text
    assert 'patchline_checkins_total{action="none"} 2.0' in text
