"""What the 2018 story reports: per phase, who got what, from where, under which rule."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

#: The shares the story must reach in the licence's first 7 days, per link.
TARGETS = {"online": 0.99, "offline": 0.95}
SOURCE_NAMES = {"server": "maker's server", "mirror": "mirror", "bundle": "SD card"}


@dataclass(frozen=True)
class Install:
    """One update a phone installed and booted."""

    phone: str
    day: date
    build: str
    from_build: str
    source: str  # server, mirror or bundle
    rule: str  # the rule the release was signed under
    delta: bool
    #: The rule that allowed it on that day by an independent reading of the rules
    #: ("" when none did: the install was out of scope).
    allowed_by: str


@dataclass
class PhaseReport:
    """One phase: what was signed, what phones did, where they ended."""

    key: str
    title: str
    start: date
    days: int
    events: list[str] = field(default_factory=list)
    signing: list[str] = field(default_factory=list)
    cards_mailed: int = 0
    runs: int = 0
    up_to_date: int = 0
    installs: list[Install] = field(default_factory=list)
    out_of_scope: list[Install] = field(default_factory=list)
    #: (status, message with per-phone details generalised) -> runs.
    problems: Counter[tuple[str, str]] = field(default_factory=Counter)
    patch_levels: Counter[str] = field(default_factory=Counter)
    builds: Counter[str] = field(default_factory=Counter)
    #: link -> (eligible phones on the newest allowed patch, eligible phones).
    targets: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: Wall-clock seconds: the phase's events (signing, syncing, cards), and in all.
    seconds_events: float = 0.0
    seconds: float = 0.0

    def install_counts(self) -> Counter[tuple[str, str, str]]:
        """(build, source, rule) -> installs."""
        return Counter((i.build, i.source, i.rule) for i in self.installs)

    def summary(self) -> str:
        """The phase in a few lines, for the narration."""
        lines = [f"   {event}" for event in self.events]
        lines += [f"   {line}" for line in self.signing]
        if self.cards_mailed:
            lines.append(f"   {self.cards_mailed} SD cards mailed to phones without a network")
        lines.append(
            f"   {self.days} days, {self.runs} update runs: {len(self.installs)} installs, "
            f"{self.up_to_date} up to date, {sum(self.problems.values())} refused or failed "
            f"({self.seconds:.0f} s, of which {self.seconds_events:.0f} s signing and syncing)"
        )
        for (build, source, rule), count in sorted(self.install_counts().items()):
            lines.append(
                f"     {count:6d} installed {build} from {SOURCE_NAMES.get(source, source)} "
                f"under rule {rule}"
            )
        for (status, message), count in self.problems.most_common(6):
            lines.append(f"     {count:6d} {status}: {_short(message)}")
        levels = ", ".join(f"{level}: {n}" for level, n in sorted(self.patch_levels.items()))
        lines.append(f"   Phones by security patch level: {levels}")
        lines.append(f"   Installs outside the rules in force: {len(self.out_of_scope)}")
        return "\n".join(lines)

    def targets_lines(self) -> list[str]:
        """The licence's reach targets, met or not."""
        lines = []
        for link, (done, eligible) in self.targets.items():
            share = done / eligible if eligible else 1.0
            verdict = "met" if share >= TARGETS[link] else "NOT met"
            lines.append(
                f"   Eligible {link} phones on the newest allowed patch after "
                f"{self.days} days: {done}/{eligible} = {share:.2%} "
                f"(target {TARGETS[link]:.0%}: {verdict})"
            )
        return lines

    def to_json(self) -> dict[str, Any]:
        """The phase as JSON values."""
        return {
            "key": self.key,
            "title": self.title,
            "start": self.start.isoformat(),
            "days": self.days,
            "seconds": round(self.seconds, 1),
            "events": self.events,
            "signing": self.signing,
            "cards_mailed": self.cards_mailed,
            "runs": self.runs,
            "up_to_date": self.up_to_date,
            "installs": [
                {"build": b, "source": s, "rule": r, "count": n}
                for (b, s, r), n in sorted(self.install_counts().items())
            ],
            "out_of_scope": [{**asdict(i), "day": i.day.isoformat()} for i in self.out_of_scope],
            "problems": [
                {"status": s, "message": m, "count": n} for (s, m), n in self.problems.most_common()
            ],
            "patch_levels": dict(sorted(self.patch_levels.items())),
            "builds": dict(sorted(self.builds.items())),
            "targets": {k: {"on_newest": d, "eligible": e} for k, (d, e) in self.targets.items()},
        }


@dataclass
class StoryReport:
    """Every phase, and what is left waiting at the end."""

    phases: list[PhaseReport] = field(default_factory=list)
    #: Signed receipts of offline installs kept on phones for a server to collect.
    receipts_waiting: int = 0
    #: Every phone at the end: who it is (model, region, deployed_on, link, away) and
    #: the build and security patch level it runs.
    phones: list[dict[str, Any]] = field(default_factory=list)

    def phase(self, key: str) -> PhaseReport:
        """The phase named ``key``."""
        return next(p for p in self.phases if p.key == key)

    @property
    def out_of_scope(self) -> list[Install]:
        """Every install the rules in force did not allow (the story expects none)."""
        return [i for p in self.phases for i in p.out_of_scope]

    @property
    def targets_met(self) -> bool:
        """Whether every reach target of every phase that has one was met."""
        return all(
            eligible == 0 or done / eligible >= TARGETS[link]
            for p in self.phases
            for link, (done, eligible) in p.targets.items()
        )

    def to_json(self) -> dict[str, Any]:
        """The whole report as JSON values."""
        return {
            "phases": [p.to_json() for p in self.phases],
            "receipts_waiting": self.receipts_waiting,
            "out_of_scope": len(self.out_of_scope),
            "targets_met": self.targets_met,
            "phones": self.phones,
        }


def _short(message: str, limit: int = 240) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"
