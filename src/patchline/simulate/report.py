"""What a simulation did, per simulated day, and how it compares with the server's view."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any


@dataclass
class DayTally:
    """One simulated day, counted by the simulator."""

    day: date
    check_ins: int = 0
    offers: int = 0  # check-ins answered with an install
    installs: int = 0  # installed (written to the other slot), reported
    booted_healthy: int = 0
    boot_failures: int = 0
    rollbacks_reported: int = 0
    rollbacks_silent: int = 0  # failed boots the device did not report
    went_silent: int = 0  # devices never heard from again after installing
    offline: int = 0  # devices offline for some of the day
    errors: int = 0  # calls the server refused or could not answer
    told_to_wait: int = 0  # of which busy answers (503, 429, 5xx): the device backed off
    seconds: float = 0.0  # wall-clock time the day took
    builds: Counter[str] = field(default_factory=Counter)  # model/build -> devices, at night

    def line(self) -> str:
        """The day in one line."""
        builds = ", ".join(f"{b} {n}" for b, n in sorted(self.builds.items()))
        return (
            f"{self.day}  check-ins {self.check_ins}  offers {self.offers}  "
            f"installs {self.installs}  healthy {self.booted_healthy}  "
            f"failed boots {self.boot_failures} (rolled back: {self.rollbacks_reported} "
            f"reported, {self.rollbacks_silent} silent)  went silent {self.went_silent}  "
            f"offline {self.offline}  errors {self.errors} "
            f"(busy: {self.told_to_wait})  builds: {builds}  "
            f"({self.seconds:.1f} s)"
        )

    def to_json(self) -> dict[str, Any]:
        """The day as JSON."""
        return {
            "day": self.day.isoformat(),
            "check_ins": self.check_ins,
            "offers": self.offers,
            "installs": self.installs,
            "booted_healthy": self.booted_healthy,
            "boot_failures": self.boot_failures,
            "rollbacks_reported": self.rollbacks_reported,
            "rollbacks_silent": self.rollbacks_silent,
            "went_silent": self.went_silent,
            "offline": self.offline,
            "errors": self.errors,
            "told_to_wait": self.told_to_wait,
            "seconds": round(self.seconds, 3),
            "builds": dict(sorted(self.builds.items())),
        }


@dataclass
class SimulationReport:
    """The whole run: its parameters, its days, and the install states of the fleet as the
    simulator caused them and as the server reports them (``GET /api/devices``)."""

    seed: int
    devices: int
    start: date
    failures: dict[str, Any]
    days: list[DayTally] = field(default_factory=list)
    enroll_seconds: float = 0.0
    #: Install state -> devices ("none": never offered), by the simulator and by the server.
    expected_states: Counter[str] = field(default_factory=Counter)
    server_states: Counter[str] = field(default_factory=Counter)
    #: Devices whose state differs: (device id, simulator's, server's), the first few.
    mismatches: list[tuple[str, str, str]] = field(default_factory=list)
    mismatch_count: int = 0

    @property
    def check_ins(self) -> int:
        """Check-ins over the whole run."""
        return sum(d.check_ins for d in self.days)

    @property
    def check_ins_per_second(self) -> float:
        """Check-ins per wall-clock second over the simulated days (enrollment aside)."""
        seconds = sum(d.seconds for d in self.days)
        return self.check_ins / seconds if seconds else 0.0

    @property
    def agrees(self) -> bool:
        """Whether the server sees every device in the install state the simulator left
        it in."""
        return self.mismatch_count == 0

    def summary(self) -> str:
        """The last lines of a run: totals, rate, and the comparison with the server."""
        states = ", ".join(f"{s} {n}" for s, n in sorted(self.expected_states.items()))
        verdict = (
            "the server agrees on every device"
            if self.agrees
            else f"the server disagrees on {self.mismatch_count} devices, e.g. "
            + "; ".join(f"{d}: simulated {a}, server {b}" for d, a, b in self.mismatches[:3])
        )
        return (
            f"{self.devices} devices enrolled in {self.enroll_seconds:.1f} s; "
            f"{self.check_ins} check-ins at {self.check_ins_per_second:.0f}/s.\n"
            f"Install states: {states}; {verdict}."
        )

    def to_json(self) -> dict[str, Any]:
        """The report as JSON (stable keys)."""
        return {
            "seed": self.seed,
            "devices": self.devices,
            "start": self.start.isoformat(),
            "failures": self.failures,
            "enroll_seconds": round(self.enroll_seconds, 3),
            "check_ins": self.check_ins,
            "check_ins_per_second": round(self.check_ins_per_second, 1),
            "days": [d.to_json() for d in self.days],
            "install_states": {
                "simulator": dict(sorted(self.expected_states.items())),
                "server": dict(sorted(self.server_states.items())),
                "mismatches": self.mismatch_count,
                "examples": [list(m) for m in self.mismatches],
            },
        }
