"""The 2018 story, replayed on simulated time with real phones, server, mirrors and cards.

1. Normal service (March): the maker's server directs every online phone to the new
   security build; offline phones get it on an SD card from a shop.
2. The servers go dark (April 2): the maker still signs, but its server is gone for
   good; phones find the April build on two mirrors, offline phones on mailed cards.
3. The denial order (April 15): every update is blocked. The maker may no longer sign;
   its named successor, a carrier, takes over signing (devices need no change), re-signs
   every release as lapsed and keeps the metadata fresh. The maker's queued functional
   build is refused at signing.
4. The licence (July 2 - August 1): security updates only, only to phones deployed
   before the ban, not in KP. The carrier signs the July security build under it (the
   licence's limits signed into the release); a functional build is refused. Phones
   sold from stock during the ban join. Mirrors and cards carry the build; every phone
   decides for itself from the signed limits.
5. The licence lapses (August 1): late cards and phones switched on again are refused.

Every phone is a device directory run by the real agent on worker processes; the
maker's server, the mirrors (static hosts fed by ``mirror sync``) and the cards (signed
offline bundles) are the real components. Time is one simulated clock; each simulated
day the signer's refresh job and the mirrors' sync run, then every online phone that is
connected that day polls once at its own hour, and every card that arrives is inserted.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from time import monotonic
from typing import Any

import msgspec

from patchline.agent import DeviceConfig, DeviceDir, HealthCheck, Limits
from patchline.clock import FixedClock
from patchline.demo.scenario import ENROLLMENT_TOKEN, MARKER
from patchline.demo.story.fleet import (
    FleetShape,
    Link,
    Phone,
    connected,
    draw_fleet,
    poll_minute,
)
from patchline.demo.story.oracle import rules_verdict
from patchline.demo.story.report import Install, PhaseReport, StoryReport
from patchline.demo.story.runner import Job, Kind, Outcome, Status, Workers, go_offline
from patchline.demo.story.world import World
from patchline.errors import NotAuthorisedError
from patchline.policy import Effect, Rule
from patchline.repository.passphrases import PassphraseSource
from patchline.settings import Settings
from patchline.wire.release import UpdateClass

Say = Callable[[str], None]

BAN = date(2018, 4, 15)
LICENCE_START = date(2018, 7, 2)
LICENCE_END = date(2018, 8, 1)
NORMAL = Rule(id="normal", title="Normal service", effect=Effect.ALLOW, priority=10)
DENIAL = Rule(
    id="denial-2018", title="Denial order", effect=Effect.BLOCK, priority=100, valid_from=BAN
)
LICENCE = Rule(
    id="L-2018-07",
    title="Temporary general licence",
    effect=Effect.ALLOW,
    priority=200,
    update_classes=frozenset({UpdateClass.SECURITY}),
    deployed_before=BAN,
    regions_excluded=frozenset({"KP"}),
    valid_from=LICENCE_START,
    valid_until=LICENCE_END,
)
#: The factory build and the builds the story signs: build, patch level, class.
FACTORY = ("1.0", date(2018, 1, 5), UpdateClass.SECURITY)
MARCH = ("1.1", date(2018, 3, 5), UpdateClass.SECURITY)
APRIL = ("1.2", date(2018, 4, 5), UpdateClass.SECURITY)
FEATURES = ("1.3", date(2018, 4, 5), UpdateClass.FUNCTIONAL)
JULY = ("1.4", date(2018, 7, 5), UpdateClass.SECURITY)
JULY_FEATURES = ("1.5", date(2018, 7, 5), UpdateClass.FUNCTIONAL)


@dataclass(frozen=True)
class Phase:
    """A stretch of simulated days."""

    key: str
    title: str
    start: date
    days: int


PHASES = (
    Phase("normal", "Normal service: the maker's server directs updates", date(2018, 3, 5), 3),
    Phase("dark", "The maker's servers are gone: mirrors and SD cards", date(2018, 4, 2), 5),
    Phase("ban", "Denial order: nothing may be delivered", BAN, 1),
    Phase(
        "licence",
        "Licence L-2018-07: security only, phones deployed before the ban",
        LICENCE_START,
        7,
    ),
    Phase("lapsed", "The licence has lapsed", LICENCE_END, 2),
)


@dataclass(frozen=True)
class CardPlan:
    """Shares of offline owners who mishandle a mailed card."""

    never: float = 0.01  # never inserted
    late: float = 0.01  # inserted only after the phase (for the licence: after it lapsed)
    damaged: float = 0.02  # arrives damaged; a replacement follows two days later

    @property
    def shares(self) -> tuple[float, float, float]:
        """(never, late, damaged)."""
        return (self.never, self.late, self.damaged)


@dataclass
class _Phone:
    spec: Phone
    path: Path
    build: str
    patch_level: date


@dataclass
class Story:
    """The replay: its world, its phones, what happened."""

    world: World
    workers: Workers
    phones: dict[int, _Phone]
    shape: FleetShape
    cards: CardPlan
    say: Say
    port: int
    phones_dir: Path
    report: StoryReport = field(default_factory=StoryReport)
    #: Card insertions due: day -> [(phone, card folder)].
    due: dict[date, list[tuple[int, Path]]] = field(default_factory=dict)

    # --- the days ----------------------------------------------------------------------

    def run_phase(self, phase: Phase, events: Callable[[PhaseReport], None]) -> PhaseReport:
        """Set the clock to the phase's first morning, run its events, then its days."""
        report = PhaseReport(phase.key, phase.title, phase.start, phase.days)
        self.report.phases.append(report)
        self.say(f"[bold]{phase.start.isoformat()} {phase.title}[/]")
        self.world.clock.set(datetime.combine(phase.start, time(0, 0), UTC))
        started = monotonic()
        events(report)
        report.seconds_events = monotonic() - started
        for offset in range(phase.days):
            day = phase.start + timedelta(days=offset)
            self.world.clock.set(datetime.combine(day, time(0, 0), UTC))
            if offset:
                self.world.keep_fresh()
            self._day(day, report)
        report.seconds = monotonic() - started
        report.patch_levels = Counter(p.patch_level.isoformat() for p in self.phones.values())
        report.builds = Counter(p.build for p in self.phones.values())
        self.say(report.summary())
        return report

    def _day(self, day: date, report: PhaseReport) -> None:
        jobs: list[Job] = []
        for index, card in self.due.pop(day, []):
            jobs.append(self._job(Kind.UPDATE, index, day, card=card))
        for phone in self.phones.values():
            spec = phone.spec
            if spec.link is not Link.ONLINE or self._switched_off(spec, day):
                continue
            if connected(self.shape, spec.index, day):
                jobs.append(self._job(Kind.UPDATE, spec.index, day))
        for outcome in self.workers.run(jobs):
            self._record(outcome, report)

    def _switched_off(self, spec: Phone, day: date) -> bool:
        return spec.away and LICENCE_START - timedelta(days=7) <= day < LICENCE_END

    def _job(self, kind: Kind, index: int, day: date, card: Path | None = None) -> Job:
        minute = poll_minute(self.shape, index, day)
        at = datetime.combine(day, time(0, 0), UTC) + timedelta(minutes=minute)
        return Job(kind, index, str(self.phones[index].path), at, card=str(card or ""))

    def _record(self, outcome: Outcome, report: PhaseReport) -> None:
        phone = self.phones[outcome.phone]
        report.runs += 1
        if outcome.status is Status.INSTALLED:
            signed = self.world.signed[(phone.spec.model, outcome.build)]
            verdict = rules_verdict(
                self.world.rules,
                self.world.amendments,
                outcome.at.date(),
                model=phone.spec.model,
                update_class=signed.update_class,
                region=phone.spec.region,
                deployed_on=phone.spec.deployed_on,
            )
            install = Install(
                phone=phone.spec.name,
                day=outcome.at.date(),
                build=outcome.build,
                from_build=phone.build,
                source=outcome.source,
                rule=signed.authorisation.eligibility.rule,
                delta=outcome.delta,
                allowed_by=verdict.rule if verdict.allowed else "",
            )
            report.installs.append(install)
            if not verdict.allowed:
                report.out_of_scope.append(install)
            phone.build = outcome.build
            phone.patch_level = signed.security_patch_level
            return
        if outcome.status is Status.UP_TO_DATE:
            report.up_to_date += 1
            return
        report.problems[(outcome.status.value, self.plain(outcome.message))] += 1

    def plain(self, message: str) -> str:
        """A run's message with what differs per phone taken out, so runs can be counted
        together: addresses named, dates of deployment and card folders generalised."""
        server = f"http://127.0.0.1:{self.port}"
        message = message.replace(f"{server}/repository", "the maker's repository")
        message = message.replace(server, "the maker's server")
        for mirror in self.world.mirrors:
            message = message.replace(mirror.url, mirror.name)
        message = re.sub(r"deployed \d{4}-\d{2}-\d{2}", "deployed D", message)
        return re.sub(r"SD card \S*/cards/(\S+?)(-damaged)?:", r"SD card \1\2:", message)

    # --- phones and cards ------------------------------------------------------------------

    def add_phones(self, specs: list[Phone], factory: tuple[str, date, UpdateClass]) -> None:
        """Make each phone's directory running the factory build (and enroll the online
        ones while the maker's server lives)."""
        build, spl, _ = factory
        server = self.world.server is not None
        jobs = []
        for spec in specs:
            path = self.phones_dir / spec.name
            self.phones[spec.index] = _Phone(spec, path, build, spl)
            config = DeviceConfig(
                model=spec.model,
                region=spec.region,
                deployed_on=spec.deployed_on.isoformat(),
                server_url=self.world.server_url if server else "",
                server_repository_url=f"{self.world.server_url}/repository" if server else "",
                mirrors=[m.url for m in self.world.mirrors],
                limits=Limits(deadline_seconds=120, connect_timeout_seconds=2),
                health=HealthCheck(marker=MARKER.decode()),
            )
            jobs.append(
                Job(
                    Kind.CREATE,
                    spec.index,
                    str(path),
                    self.world.clock.now(),
                    image=str(self.world.image(spec.model, build)),
                    config=msgspec.json.encode(config),
                    shipped_root=self.world.shipped_root,
                    director_root=self.world.director_root,
                    build=build,
                    security_patch_level=spl.isoformat(),
                )
            )
        failed = [o for o in self.workers.run(jobs) if o.status is not Status.DONE]
        if failed:
            raise RuntimeError(f"{len(failed)} phones could not be made: {failed[0].message}")
        if server:
            enrolls = [
                Job(
                    Kind.ENROLL,
                    s.index,
                    str(self.phones[s.index].path),
                    self.world.clock.now(),
                    token=ENROLLMENT_TOKEN,
                    offline=s.link is Link.OFFLINE,
                )
                for s in specs
            ]
            failed = [o for o in self.workers.run(enrolls) if o.status is not Status.DONE]
            if failed:
                raise RuntimeError(f"{len(failed)} phones could not enroll: {failed[0].message}")
        else:
            for spec in specs:
                if spec.link is Link.OFFLINE:
                    go_offline(DeviceDir(self.phones[spec.index].path))

    def mail_cards(
        self, phase: Phase, cards: dict[str, Path], report: PhaseReport, late_on: date
    ) -> None:
        """A card for every offline phone, arriving on a drawn day of ``phase``; some
        damaged (a replacement follows two days later), some never inserted, some only
        inserted on ``late_on``."""
        rng = random.Random(f"{self.shape.seed}/cards/{phase.key}")
        offline = [p for p in self.phones.values() if p.spec.link is Link.OFFLINE]
        report.cards_mailed += len(offline)
        shuffled = rng.sample(offline, len(offline))
        never, late, damaged = (round(len(offline) * share) for share in self.cards.shares)
        for rank, phone in enumerate(shuffled):
            card = cards[phone.spec.model]
            arrives = phase.start + timedelta(days=rng.randrange(max(1, phase.days - 2)))
            if rank < never:
                continue
            if rank < never + late:
                self._insert(late_on, phone, card)
                continue
            if rank < never + late + damaged:
                self._insert(arrives, phone, self.world.damaged_copy(card))
                arrives += timedelta(days=2)
            self._insert(arrives, phone, card)

    def final_state(self, phone: _Phone) -> dict[str, Any]:
        """Who ``phone`` is and what it ended on, for the report."""
        spec = phone.spec
        return {
            "name": spec.name,
            "model": spec.model,
            "region": spec.region,
            "deployed_on": spec.deployed_on.isoformat(),
            "link": spec.link.value,
            "away": spec.away,
            "build": phone.build,
            "security_patch_level": phone.patch_level.isoformat(),
        }

    def _insert(self, day: date, phone: _Phone, card: Path) -> None:
        self.due.setdefault(day, []).append((phone.spec.index, card))

    # --- signing -------------------------------------------------------------------------

    def sign(self, report: PhaseReport, model: str, release: tuple[str, date, UpdateClass]) -> bool:
        """Sign ``release`` for ``model`` under today's rules; record it or its refusal."""
        build, spl, update_class = release
        try:
            signed = self.world.sign_release(model, build, spl, update_class)
        except NotAuthorisedError as exc:
            report.signing.append(
                f"{self.world.signer_name} may not sign {model} {build} ({update_class.value}): "
                f"{exc.message}"
            )
            return False
        eligibility = signed.authorisation.eligibility
        limits = [f"under rule {eligibility.rule}"]
        if eligibility.deployed_before:
            limits.append(f"deployed before {eligibility.deployed_before}")
        if eligibility.regions_excluded:
            limits.append(f"not in {', '.join(eligibility.regions_excluded)}")
        if eligibility.valid_until:
            limits.append(f"installable until {eligibility.valid_until}")
        report.signing.append(
            f"{signed.signed_by} signed {model} {build} ({update_class.value}, patch level "
            f"{spl}): {', '.join(limits)}"
        )
        return True


def _last_day(phase: Phase) -> date:
    return phase.start + timedelta(days=phase.days - 1)


# --- the replay ---------------------------------------------------------------------------


def run_story(
    workdir: Path,
    *,
    port: int,
    say: Say,
    settings: Settings,
    passphrases: PassphraseSource,
    shape: FleetShape,
    workers: int | None = None,
    cards: CardPlan | None = None,
    phones_dir: Path | None = None,
) -> StoryReport:
    """Replay the story in ``workdir`` (wiped first) and return its report.

    The phones' directories go to ``phones_dir``, by default a fresh folder in the
    memory file system /dev/shm when there is one (removed at the end), else
    ``workdir/phones``: thousands of simulated phones each syncing their own small
    files would otherwise measure this machine's one disk, not the phones.
    """
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    in_memory = phones_dir is None and _SHM.is_dir() and os.access(_SHM, os.W_OK)
    if phones_dir is None:
        phones_dir = (
            Path(tempfile.mkdtemp(prefix="patchline-story-phones-", dir=_SHM))
            if in_memory
            else workdir / "phones"
        )
    clock = FixedClock(datetime(2018, 1, 2, tzinfo=UTC))
    world = World.create(workdir, clock, settings, passphrases, ("aurora", "nimbus"))
    pool = Workers(workers)
    story = Story(world, pool, {}, shape, cards or CardPlan(), say, port, phones_dir)
    say(
        f"Replaying with {shape.size} phones on {pool.count} worker processes; phones in "
        f"{phones_dir}{' (memory, removed at the end)' if in_memory else ''}."
    )
    try:
        _replay(story)
        story.report.phones = [story.final_state(phone) for phone in story.phones.values()]
    finally:
        world.close()
        pool.close()
        if in_memory:
            shutil.rmtree(phones_dir, ignore_errors=True)
    return story.report


_SHM = Path("/dev/shm")  # noqa: S108 - a private mkdtemp folder inside it


def _replay(story: Story) -> None:
    world, say = story.world, story.say
    fleet = draw_fleet(story.shape, date(2016, 6, 1), BAN, date(2018, 6, 30))
    before_ban = [p for p in fleet if p.deployed_on < BAN]
    sold_in_ban = [p for p in fleet if p.deployed_on >= BAN]
    models = ("aurora", "nimbus")

    world.rules.append(NORMAL)
    world.clock.set(datetime(2018, 1, 5, tzinfo=UTC))
    for model in models:
        world.sign_release(model, *FACTORY)
    world.keep_fresh()
    world.clock.set(datetime(2018, 3, 1, tzinfo=UTC))
    world.start_server(story.port)
    say(
        f"The maker signs with its own keys and names a successor (a carrier) in its root; "
        f"its server runs on {world.server_url}; mirrors: "
        f"{', '.join(f'{m.name} {m.url}' for m in world.mirrors)}."
    )
    story.add_phones(before_ban, FACTORY)
    offline = sum(1 for p in before_ban if p.link is Link.OFFLINE)
    say(
        f"{len(before_ban)} phones sold and enrolled ({offline} without a usable network), "
        f"running build {FACTORY[0]} (patch level {FACTORY[1]})."
    )
    normal, dark, ban, licence, lapsed = PHASES

    def march(report: PhaseReport) -> None:
        for model in models:
            story.sign(report, model, MARCH)
        world.keep_fresh()
        world.api("POST", "/api/releases/sync")
        cards = world.export_cards(dict.fromkeys(models, MARCH[0]))
        story.mail_cards(normal, cards, report, late_on=_last_day(normal))

    story.run_phase(normal, march)

    def april(report: PhaseReport) -> None:
        world.stop_server()
        report.events.append("the maker's update server is gone for good")
        for model in models:
            story.sign(report, model, APRIL)
        world.keep_fresh()
        cards = world.export_cards(dict.fromkeys(models, APRIL[0]))
        story.mail_cards(dark, cards, report, late_on=_last_day(dark))

    story.run_phase(dark, april)

    def denial(report: PhaseReport) -> None:
        world.rules.append(DENIAL)
        replaced = world.hand_over()
        report.events.append(
            f"the maker may not sign any more; successor {world.signer_name} takes over "
            f"signing with its own root keys and replaces {len(replaced)} online keys"
        )
        world.keep_fresh()
        lapsed_builds = sorted({f"{m} {b}" for m, b in world.restricted_today})
        report.events.append(
            f"{world.signer_name} re-signs every release under the denial order: "
            f"{', '.join(lapsed_builds)} lapse on {BAN}"
        )
        for model in models:
            story.sign(report, model, FEATURES)

    story.run_phase(ban, denial)

    def july(report: PhaseReport) -> None:
        world.rules.append(LICENCE)
        story.add_phones(sold_in_ban, APRIL)
        report.events.append(
            f"{len(sold_in_ban)} phones sold from stock during the ban join (build {APRIL[0]})"
        )
        for model in models:
            story.sign(report, model, JULY)
            story.sign(report, model, JULY_FEATURES)
        world.keep_fresh()
        cards = world.export_cards(dict.fromkeys(models, JULY[0]))
        story.mail_cards(licence, cards, report, late_on=LICENCE_END)

    report = story.run_phase(licence, july)
    report.targets = _licence_targets(story)
    for line in report.targets_lines():
        say(line)

    def lapse(report: PhaseReport) -> None:
        world.keep_fresh()
        report.events.append("late cards are inserted; phones switched off all July come back")

    story.run_phase(lapsed, lapse)
    story.report.receipts_waiting = sum(
        1
        for phone in story.phones.values()
        if phone.spec.link is Link.OFFLINE
        for _ in (phone.path / "receipts").glob("*.json")
    )


def _licence_targets(story: Story) -> dict[str, tuple[int, int]]:
    """Eligible phones on the July build after the licence's first 7 days, online and
    offline: (on it, eligible)."""
    found: dict[str, tuple[int, int]] = {}
    for link in Link:
        eligible = [
            p
            for p in story.phones.values()
            if p.spec.link is link and p.spec.deployed_on < BAN and p.spec.region != "KP"
        ]
        done = sum(1 for p in eligible if p.patch_level >= JULY[1])
        found[link.value] = (done, len(eligible))
    return found
