"""How long a device waits before it asks its server again after the server said "not
now": one rule for the device agent and the fleet simulator, so a fleet that met an
outage spreads its next questions out instead of asking all at once when it ends.

The rule ("floor times one-to-two"):

- The server answered 503 or 429 with ``Retry-After: R``: the floor is R seconds.
- It answered a server error without ``Retry-After``: the floor is 30 s doubled for each
  consecutive failure before this one (30, 60, 120, ... s).
- The floor is capped at half of ``MAX_WAIT_SECONDS``; the wait is the floor times a
  factor drawn uniformly from [1, 2). So a device never asks sooner than the server
  asked, never waits longer than ``MAX_WAIT_SECONDS`` (an hour), and a fleet given the
  same answer at the same instant asks again spread over a window as long as the floor.
"""

from __future__ import annotations

import random
from datetime import datetime
from email.utils import parsedate_to_datetime

#: The longest a device waits before it asks its server again, whatever it was told.
MAX_WAIT_SECONDS = 3600.0
#: The floor after the first server error that named no Retry-After.
FIRST_BACKOFF_SECONDS = 30.0


def wait_before_asking(retry_after: float | None, failures: int, rng: random.Random) -> float:
    """Seconds to wait before asking the server again, drawn from ``rng``.

    ``retry_after``: the server's Retry-After in seconds (None when it gave none);
    ``failures``: how many answers in a row were errors, this one included (at least 1).
    The result is within [floor, 2 x floor) and at most ``MAX_WAIT_SECONDS``, where the
    floor is ``retry_after`` or the exponential backoff for ``failures`` (module doc)."""
    if retry_after is not None and retry_after > 0:
        floor = retry_after
    else:
        floor = FIRST_BACKOFF_SECONDS * 2.0 ** min(max(failures, 1) - 1, 30)
    floor = min(floor, MAX_WAIT_SECONDS / 2)
    return floor * (1.0 + rng.random())


def retry_after_seconds(header: str | None, now: datetime) -> float | None:
    """The seconds a ``Retry-After`` header value asks for (delta-seconds or an HTTP
    date, RFC 9110), counted from ``now``; None when absent or unreadable."""
    if header is None:
        return None
    value = header.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)
