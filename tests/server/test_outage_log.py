"""A failure every request meets is logged once with its traceback, then once per
interval with how many more there were."""

from __future__ import annotations

import logging

import pytest

from patchline.server.outage_log import OutageLog


def test_a_failure_is_logged_once_per_interval_with_the_count_of_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    outages = OutageLog(logging.getLogger("patchline.test"), interval=10, now=lambda: now[0])
    with caplog.at_level(logging.ERROR, "patchline.test"):
        for i in range(1000):
            try:
                raise ConnectionError("database away")
            except ConnectionError:
                outages.failed("load", "could not load device %s", f"d{i}")
        now[0] += 10
        outages.failed("load", "could not load device %s", "d1000")
        outages.failed("key", "could not load the key of device %s", "d1")
        now[0] += 10
        outages.failed("load", "could not load device %s", "d1001")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "could not load device d0",
        "could not load device d1000 (and 999 more like it)",
        "could not load the key of device d1",
        "could not load device d1001",
    ]
    assert caplog.records[0].exc_info is not None  # the first one shows where it failed
    assert all(r.exc_info is None for r in caplog.records[1:2])
