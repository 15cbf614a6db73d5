"""Time as an injected dependency, so that simulated dates and tests never sleep."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from patchline.errors import ConfigError


class Clock(Protocol):
    """Anything that can tell the current time (timezone-aware, UTC)."""

    def now(self) -> datetime:
        """Return the current instant as an aware UTC datetime."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        """Return the machine's current time in UTC."""
        return datetime.now(UTC)


class FixedClock:
    """A clock that shows a set instant until moved; for simulations and tests."""

    def __init__(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._instant = instant.astimezone(UTC)

    def now(self) -> datetime:
        """Return the instant this clock is set to."""
        return self._instant

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward (or back, with a negative delta)."""
        self._instant += delta

    def set(self, instant: datetime) -> None:
        """Set the clock to another aware instant."""
        if instant.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._instant = instant.astimezone(UTC)


class FileClock:
    """A clock read from a file another process moves: a simulation's time, shared by a
    server process (``PATCHLINE_SIMULATED_CLOCK_FILE``) and the simulator writing it.

    The file holds one ISO 8601 instant; ``write_clock_file`` replaces it atomically, so a
    reader sees the old instant or the new one, never half of one. Each ``now()`` costs a
    ``stat``; the file is read again only when it was replaced.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._instant = datetime.fromtimestamp(0, UTC)
        self.now()  # fail at once, not on the first request, when the file is unusable

    def now(self) -> datetime:
        """Return the instant the file holds now. Raises ConfigError when the file is
        missing or holds no aware ISO 8601 instant."""
        try:
            stat = os.stat(self.path)
            seen = (stat.st_ino, stat.st_mtime_ns)
            if seen != self._seen:
                self._instant = _read_instant(self.path)
                self._seen = seen
        except OSError as exc:
            raise ConfigError(
                f"cannot read the simulated clock {self.path}: {exc.strerror}",
                hint="start the simulation that writes it, or unset PATCHLINE_SIMULATED_CLOCK_FILE",
            ) from None
        return self._instant


def write_clock_file(path: Path, instant: datetime) -> None:
    """Set the time a ``FileClock`` on ``path`` tells to the aware ``instant``, atomically."""
    if instant.tzinfo is None:
        raise ValueError("a clock file needs an aware datetime")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(instant.astimezone(UTC).isoformat() + "\n")
    os.replace(temporary, path)


def _read_instant(path: Path) -> datetime:
    text = path.read_text().strip()
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"the simulated clock {path} holds {text[:40]!r}, not an instant"
        ) from None
    if instant.tzinfo is None:
        raise ConfigError(f"the simulated clock {path} holds an instant without a time zone")
    return instant.astimezone(UTC)
