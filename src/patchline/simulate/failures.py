"""The failure model of a simulated fleet, as data: per build and model, the share of
devices that fail to boot it (and roll back) and the share that go silent after
installing it; how many failures are reported; and offline stretches.

A TOML file says the same::

    rollback_reported = 0.5     # share of failed boots the device reports (rest silent)

    [offline]
    share = 0.05                # share of devices offline once during the run ...
    days = [1, 3]               # ... for between 1 and 3 days

    [[build]]
    model = "aurora"            # "*" (the default) for every model
    build = "1.1"               # "*" (the default) for every build
    boot_failure = 0.10
    silent_after_install = 0.02
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchline.errors import UsageError

ANY = "*"


@dataclass(frozen=True)
class BuildFailure:
    """What installing ``build`` does to devices of ``model`` ("*": any)."""

    model: str = ANY
    build: str = ANY
    #: Share of installs that fail to boot and roll back to the previous slot.
    boot_failure: float = 0.0
    #: Share of installs after which the device is never heard from again.
    silent_after_install: float = 0.0

    def __post_init__(self) -> None:
        _share("boot_failure", self.boot_failure)
        _share("silent_after_install", self.silent_after_install)
        if self.boot_failure + self.silent_after_install > 1:
            raise UsageError(
                f"build {self.model}/{self.build}: boot_failure + silent_after_install "
                "is more than 1"
            )

    def matches(self, model: str, build: str) -> bool:
        """Whether this entry speaks of ``build`` on ``model``."""
        return self.model in (ANY, model) and self.build in (ANY, build)


@dataclass(frozen=True)
class Offline:
    """A ``share`` of devices is offline once during the run, for ``days`` (a range)."""

    share: float = 0.0
    days: tuple[int, int] = (1, 3)

    def __post_init__(self) -> None:
        _share("offline share", self.share)
        low, high = self.days
        if not 1 <= low <= high:
            raise UsageError(f"offline days {low}..{high} must be at least 1, low to high")


@dataclass(frozen=True)
class FailureModel:
    """Everything that goes wrong in a simulated fleet; the first matching build entry
    applies."""

    builds: tuple[BuildFailure, ...] = ()
    rollback_reported: float = 0.5
    offline: Offline = field(default_factory=Offline)

    def __post_init__(self) -> None:
        _share("rollback_reported", self.rollback_reported)

    def for_install(self, model: str, build: str) -> BuildFailure:
        """What installing ``build`` on ``model`` does (nothing goes wrong if no entry
        matches)."""
        for entry in self.builds:
            if entry.matches(model, build):
                return entry
        return BuildFailure(model, build)

    def to_json(self) -> dict[str, Any]:
        """The model as the TOML file would say it (JSON-ready)."""
        return {
            "rollback_reported": self.rollback_reported,
            "offline": {"share": self.offline.share, "days": list(self.offline.days)},
            "build": [
                {
                    "model": b.model,
                    "build": b.build,
                    "boot_failure": b.boot_failure,
                    "silent_after_install": b.silent_after_install,
                }
                for b in self.builds
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FailureModel:
        """Read the model from parsed TOML (or JSON); UsageError when it is malformed."""
        try:
            offline = data.get("offline", {})
            low, high = offline.get("days", [1, 3])
            return cls(
                builds=tuple(
                    BuildFailure(
                        model=str(entry.get("model", ANY)),
                        build=str(entry.get("build", ANY)),
                        boot_failure=float(entry.get("boot_failure", 0.0)),
                        silent_after_install=float(entry.get("silent_after_install", 0.0)),
                    )
                    for entry in data.get("build", [])
                ),
                rollback_reported=float(data.get("rollback_reported", 0.5)),
                offline=Offline(float(offline.get("share", 0.0)), (int(low), int(high))),
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise UsageError(f"malformed failure model: {exc}") from None

    @classmethod
    def load(cls, path: Path) -> FailureModel:
        """Read a failure model from a TOML file; UsageError when it is unreadable."""
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"cannot read the failure model {path}: {exc}") from None
        return cls.from_json(data)


def _share(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"{name} must be a share between 0 and 1, not {value}")


#: The default: every install fails to boot on 5% of devices and leaves 1% silent; half
#: the failures are reported; 5% of devices are offline for 1-3 days.
DEFAULT_FAILURES = FailureModel(
    builds=(BuildFailure(boot_failure=0.05, silent_after_install=0.01),),
    rollback_reported=0.5,
    offline=Offline(0.05, (1, 3)),
)
