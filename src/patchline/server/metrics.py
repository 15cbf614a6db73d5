"""Prometheus metrics of one server process (a registry per app, no global state)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class Metrics:
    """The counters and gauges ``/metrics`` exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.checkins = _CheckIns()
        self.registry.register(self.checkins)
        self.reports = Counter(
            "patchline_reports", "Install reports by status", ["status"], registry=self.registry
        )
        self.signatures = Gauge(
            "patchline_director_signatures",
            "Answers signed by the director",
            registry=self.registry,
        )
        self.writer_batches = Gauge(
            "patchline_writer_batches", "Batches written to the database", registry=self.registry
        )
        self.writer_failures = Gauge(
            "patchline_writer_failures", "Batches the database refused", registry=self.registry
        )
        self.failed_signins = Counter(
            "patchline_api_failed_signins",
            "Management API requests refused for a missing, unknown or revoked token",
            ["reason"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "patchline_api_rate_limited",
            "Management API requests refused with 429, by the limit they hit",
            ["limit"],
            registry=self.registry,
        )
        self.catalog_version = Gauge(
            "patchline_catalog_version", "Catalog version in use", registry=self.registry
        )

    def count_checkin(self, action: str) -> None:
        """Count one check-in answered with ``action`` (a dictionary increment: the
        device API's hot path; read when ``/metrics`` is scraped)."""
        self.checkins.by_action[action] += 1


class _CheckIns(Collector):
    """``patchline_checkins_total`` by action, counted in a plain dictionary: the
    event loop is the only writer, so no lock per check-in."""

    def __init__(self) -> None:
        self.by_action: Tally[str] = Tally()

    def collect(self) -> Iterator[CounterMetricFamily]:
        """The counts as a Prometheus counter family."""
        family = CounterMetricFamily(
            "patchline_checkins", "Device check-ins by decision", labels=["action"]
        )
        for action, count in sorted(self.by_action.items()):
            family.add_metric([action], count)
        yield family
