"""Prometheus metrics of one server process (a registry per app, no global state)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    """The counters and gauges ``/metrics`` exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.checkins = Counter(
            "patchline_checkins", "Device check-ins by decision", ["action"], registry=self.registry
        )
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
        self._checkin_children: dict[str, Any] = {}
        self.catalog_version = Gauge(
            "patchline_catalog_version", "Catalog version in use", registry=self.registry
        )

    def checkin_counter(self, action: str) -> Any:
        """The check-in counter for one action (label lookup cached: hot path)."""
        child = self._checkin_children.get(action)
        if child is None:
            child = self._checkin_children[action] = self.checkins.labels(action)
        return child
