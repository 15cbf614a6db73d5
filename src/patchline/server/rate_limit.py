"""Token buckets: how many requests a key (a token, an address) may make, and when next.

In-process: each server process keeps its own buckets, so with N processes a key gets up
to N times the rate (docs/server.md says so).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from patchline.bounded_cache import BoundedCache


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """``per_minute`` requests a minute for each key, in bursts of up to ``per_minute``.

    ``now`` is a monotonic clock in seconds (injected so tests can move time); at most
    ``max_keys`` keys are remembered (the least recently seen are forgotten, i.e. start
    again with a full bucket).
    """

    def __init__(
        self,
        per_minute: int,
        now: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.capacity = float(max(per_minute, 1))
        self.rate = self.capacity / 60.0
        self._now = now
        self._buckets: BoundedCache[str, _Bucket] = BoundedCache(max_keys)

    def _bucket(self, key: str) -> _Bucket:
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.capacity, now)
            self._buckets.put(key, bucket)
        else:
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        return bucket

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may make a request (0: it may now); takes nothing."""
        bucket = self._bucket(key)
        if bucket.tokens >= 1.0:
            return 0
        return max(1, math.ceil((1.0 - bucket.tokens) / self.rate))

    def take(self, key: str) -> int:
        """Spend one request of ``key``; return 0 when allowed, else the seconds to wait
        (nothing is spent then)."""
        wait = self.retry_after(key)
        if wait == 0:
            self._bucket(key).tokens -= 1.0
        return wait
