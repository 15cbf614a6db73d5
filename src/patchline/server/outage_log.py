"""Logging a failure that every request meets (the database away) without flooding the
log: the first occurrence of each kind with its traceback, then at most one line per
interval saying how many more there were.

During an outage a server may refuse thousands of requests a second; one traceback each
would fill disks and journals (and, with output to a pipe nobody drains, stop the
process), while the operator needs one clear line that the outage goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class OutageLog:
    """Failures by kind, logged at most once per ``interval`` seconds per kind."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._interval = interval
        self._now = now
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def failed(self, kind: str, message: str, *args: object) -> None:
        """Log ``message % args`` under ``kind`` (with the traceback being handled, the
        first time), unless ``kind`` was logged less than ``interval`` seconds ago; then
        only count it, for the next line to say."""
        now = self._now()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self._interval:
                self._quiet[kind] = self._quiet.get(kind, 0) + 1
                return
            quiet = self._quiet.pop(kind, 0)
            self._last[kind] = now
        if last is None:
            self._log.exception(message, *args)
        elif quiet:
            self._log.error(message + " (and %d more like it)", *args, quiet)
        else:
            self._log.error(message, *args)
