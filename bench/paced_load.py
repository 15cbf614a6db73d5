"""Open-loop (paced) check-in load: requests leave on a fixed schedule whatever the
answers do, and each latency counts from the instant its request was due.

``bench/checkin/paced.c`` (one thread, epoll, keep-alive connections) is built with the C
compiler on first use (Debian package gcc) into a cache directory. wrk's own pacing
(``delay()`` after each answer) is closed-loop: a slow answer delays the requests behind
it, which hides the latency they would have seen.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).parent / "checkin" / "paced.c"


@dataclass
class PacedResult:
    """What one paced run measured (latencies in ms, from each request's due instant)."""

    rate: float
    achieved_rps: float
    scheduled: int
    answered: int
    non_200: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float


def build() -> Path:
    """The compiled load generator, built once per version of its source."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    binary = Path(tempfile.gettempdir()) / f"patchline-paced-{digest}"
    if not binary.exists():
        partial = binary.with_suffix(".tmp")
        subprocess.run(["cc", "-O2", "-o", str(partial), str(SOURCE)], check=True)
        partial.rename(binary)
    return binary


def paced(
    port: int, rate: float, seconds: float, credentials: Path, body: Path, connections: int = 64
) -> PacedResult:
    """Send ``rate`` check-ins a second for ``seconds`` to 127.0.0.1:``port``."""
    out = subprocess.run(
        [
            str(build()),
            str(port),
            f"{rate:.1f}",
            f"{seconds:.1f}",
            str(connections),
            str(credentials),
            str(body),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    data = json.loads(out)
    return PacedResult(
        rate=data["rate"],
        achieved_rps=data["achieved_rps"],
        scheduled=data["scheduled"],
        answered=data["answered"],
        non_200=data["non_200"],
        p50_ms=data["p50_ms"],
        p90_ms=data["p90_ms"],
        p99_ms=data["p99_ms"],
        p999_ms=data["p999_ms"],
        max_ms=data["max_ms"],
    )
