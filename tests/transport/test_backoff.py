"""The wait before asking the server again: never sooner than the server asked, never
longer than the cap, jittered so a fleet told the same thing at once spreads out."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from patchline.transport.backoff import (
    FIRST_BACKOFF_SECONDS,
    MAX_WAIT_SECONDS,
    retry_after_seconds,
    wait_before_asking,
)


def test_a_fleet_told_retry_after_spreads_over_one_to_two_times_it() -> None:
    rng = random.Random(7)
    waits = [wait_before_asking(10, 1, rng) for _ in range(1000)]
    assert all(10 <= w < 20 for w in waits)
    assert len(set(waits)) == 1000
    # Spread over the whole window, not bunched: each 1 s bucket of [10, 20) gets some.
    buckets = {int(w) for w in waits}
    assert buckets == set(range(10, 20))
    # Not more than a fifth of the fleet in any one second (uniform: about a tenth).
    assert max(sum(1 for w in waits if int(w) == b) for b in buckets) < 200


def test_without_retry_after_the_wait_doubles_with_each_error_in_a_row() -> None:
    rng = random.Random(1)
    for failures in range(1, 7):
        floor = FIRST_BACKOFF_SECONDS * 2 ** (failures - 1)
        waits = [wait_before_asking(None, failures, rng) for _ in range(200)]
        assert all(floor <= w < 2 * floor for w in waits), failures
        assert len(set(waits)) == 200


def test_the_wait_is_capped_and_stays_jittered_at_the_cap() -> None:
    rng = random.Random(2)
    for retry_after, failures in [(None, 50), (None, 10_000), (86_400.0, 1), (1e12, 3)]:
        waits = [wait_before_asking(retry_after, failures, rng) for _ in range(200)]
        assert all(MAX_WAIT_SECONDS / 2 <= w <= MAX_WAIT_SECONDS for w in waits)
        assert len(set(waits)) == 200


def test_a_zero_or_negative_retry_after_falls_back_to_the_backoff() -> None:
    rng = random.Random(3)
    assert FIRST_BACKOFF_SECONDS <= wait_before_asking(0, 1, rng) < 2 * FIRST_BACKOFF_SECONDS
    assert FIRST_BACKOFF_SECONDS <= wait_before_asking(-5, 0, rng) < 2 * FIRST_BACKOFF_SECONDS


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    now = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("10", now) == 10
    assert retry_after_seconds(" 120 ", now) == 120
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert retry_after_seconds(later, now) == 90
    earlier = format_datetime(now - timedelta(seconds=90), usegmt=True)
    assert retry_after_seconds(earlier, now) == 0
    assert retry_after_seconds(None, now) is None
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds("-3", now) is None
