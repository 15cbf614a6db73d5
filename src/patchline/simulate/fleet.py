"""The simulation: a fleet of ``SimDevice`` on a ``SimWorld``, over simulated days.

Each day is cut into steps (15 minutes by default). At each step the shared clock is
moved, then every device whose turn has come takes it, at most ``concurrency`` at once;
the next step starts when they are all done, so the server never sees a device call
from another instant than the one its clock tells. After the last day the simulation
reads every device's install state from the server (``GET /api/devices``) and compares
it with the state it left each device in.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import httpx

from patchline.errors import SimulationError
from patchline.simulate.catalog import Catalog
from patchline.simulate.device import REGIONS, Fetch, Lane, Phase, Services, SimDevice
from patchline.simulate.failures import DEFAULT_FAILURES, FailureModel
from patchline.simulate.report import DayTally, SimulationReport
from patchline.simulate.world import SimWorld
from patchline.transport.device_api_async import AsyncDeviceApiClient

Say = Callable[[str], None]


@dataclass(frozen=True)
class SimulationOptions:
    """How a run goes."""

    devices: int
    days: int
    seed: int = 0
    concurrency: int = 64
    start: date = date(2026, 3, 2)
    failures: FailureModel = field(default_factory=lambda: DEFAULT_FAILURES)
    poll_interval: timedelta = timedelta(hours=6)
    jitter: float = 0.25
    step: timedelta = timedelta(minutes=15)
    fetch: Fetch = Fetch.RANGE

    @property
    def start_instant(self) -> datetime:
        """Midnight UTC of the first day."""
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)


class Simulation:
    """A run of ``options`` against ``world``; ``run()`` returns its report."""

    def __init__(self, world: SimWorld, options: SimulationOptions, say: Say) -> None:
        self.world = world
        self.options = options
        self.say = say
        self.devices: list[SimDevice] = []
        self.lanes: list[Lane] = []

    def run(self) -> SimulationReport:
        """Enroll the fleet, run the days, compare with the server's view."""
        return asyncio.run(self._run())

    async def _run(self) -> SimulationReport:
        opts = self.options
        catalog = Catalog.from_releases(self.world.api("GET", "/api/releases"))
        report = SimulationReport(opts.seed, opts.devices, opts.start, opts.failures.to_json())
        async with contextlib.AsyncExitStack() as stack:
            tls = ssl.create_default_context()  # built once: it costs ~50 ms
            self.lanes = [
                await stack.enter_async_context(_lane(self.world.lane_url(index), tls))
                for index in range(opts.concurrency)
            ]
            services = Services(
                catalog=catalog,
                failures=opts.failures,
                fetch=opts.fetch,
                poll_interval=opts.poll_interval,
                jitter=opts.jitter,
            )
            self.devices = self._draw_fleet(catalog)
            started = time.monotonic()
            self.world.set_time(opts.start_instant)
            await self._enroll_all()
            report.enroll_seconds = time.monotonic() - started
            self.say(
                f"{len(self.devices)} devices enrolled in {report.enroll_seconds:.1f} s "
                f"({', '.join(f'{m} {n}' for m, n in sorted(self._models().items()))})"
            )
            for offset in range(opts.days):
                tally = await self._day(opts.start + timedelta(days=offset), services)
                report.days.append(tally)
                self.say(tally.line())
        await asyncio.to_thread(self._compare, report)
        return report

    def _models(self) -> Counter[str]:
        return Counter(d.model for d in self.devices)

    def _draw_fleet(self, catalog: Catalog) -> list[SimDevice]:
        opts = self.options
        models = catalog.models
        start = opts.start_instant
        span = timedelta(days=opts.days)
        devices = []
        for index in range(opts.devices):
            rng = random.Random(f"{opts.seed}:{index}")
            model = models[rng.randrange(len(models))]
            device = SimDevice(
                index=index,
                rng=rng,
                model=model,
                region=REGIONS[rng.randrange(len(REGIONS))],
                deployed_on=opts.start - timedelta(days=rng.randrange(30, 700)),
                running=catalog.factory[model],
            )
            device.next_turn = start + opts.poll_interval * rng.random()
            if rng.random() < opts.failures.offline.share:
                low, high = opts.failures.offline.days
                device.offline_from = start + span * rng.random()
                device.offline_until = device.offline_from + timedelta(days=rng.randint(low, high))
            devices.append(device)
        return devices

    async def _enroll_all(self) -> None:
        async def enroll(device: SimDevice, lane: Lane) -> None:
            serial = f"SIM-{self.options.seed}-{device.index:07d}"
            answer = await lane.api.enroll(
                self.world.enrollment_token, device.enroll_request(serial)
            )
            device.device_id, device.credential = answer.device_id, answer.credential

        await self._on_lanes(self.devices, enroll)

    async def _on_lanes(
        self, devices: list[SimDevice], work: Callable[[SimDevice, Lane], Awaitable[None]]
    ) -> None:
        """Do ``work`` for every device, one device at a time on each lane."""
        queue = collections.deque(devices)

        async def drain(lane: Lane) -> None:
            while queue:
                await work(queue.popleft(), lane)

        await asyncio.gather(*(drain(lane) for lane in self.lanes))

    async def _day(self, day: date, services: Services) -> DayTally:
        opts = self.options
        tally = DayTally(day)
        started = time.monotonic()
        morning = datetime(day.year, day.month, day.day, tzinfo=UTC)
        night = morning + timedelta(days=1)
        tally.offline = sum(
            1
            for d in self.devices
            if d.offline_from is not None
            and d.offline_until is not None
            and d.offline_from < night
            and d.offline_until > morning
        )
        now = morning

        async def turn(device: SimDevice, lane: Lane) -> None:
            await device.turn(now, services, lane, tally)

        while now < night:
            self.world.set_time(now)
            due = []
            for device in self.devices:
                if device.phase is Phase.SILENT or device.next_turn > now:
                    continue
                if device.offline_at(now):
                    assert device.offline_until is not None
                    device.next_turn = device.offline_until
                    continue
                due.append(device)
            await self._on_lanes(due, turn)
            now += opts.step
        tally.builds = Counter(f"{d.model}/{d.running.build}" for d in self.devices)
        tally.seconds = time.monotonic() - started
        return tally

    def _compare(self, report: SimulationReport) -> None:
        """Read every device's install state from the server and compare."""
        expected = {d.device_id: d.expected_state for d in self.devices}
        report.expected_states = Counter(expected.values())
        seen: dict[str, str] = {}
        # Check-ins that change nothing the device decides are written in batches.
        for attempt in range(10):
            seen = self._server_states(set(expected))
            if all(seen.get(i) == s for i, s in expected.items()) or attempt == 9:
                break
            time.sleep(0.5)
        report.server_states = Counter(seen.get(i, "missing") for i in expected)
        wrong = [(i, s, seen.get(i, "missing")) for i, s in expected.items() if seen.get(i) != s]
        report.mismatch_count = len(wrong)
        report.mismatches = wrong[:10]

    def _server_states(self, ours: set[str]) -> dict[str, str]:
        states: dict[str, str] = {}
        page = 1
        while True:
            answer = self.world.api("GET", f"/api/devices?page={page}&page_size=1000")
            for row in answer["devices"]:
                if row["id"] in ours:
                    states[row["id"]] = row["install_state"] or "none"
            if page * 1000 >= answer["total"]:
                return states
            page += 1
            if page > 10_000:
                raise SimulationError("the server's device listing does not end")


@contextlib.asynccontextmanager
async def _lane(server_url: str, tls: ssl.SSLContext) -> AsyncIterator[Lane]:
    """One keep-alive connection to the server (a pool per lane keeps httpx's pool
    bookkeeping, which grows with connections times requests, out of the way)."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(limits=limits, timeout=60, verify=tls) as http:
        yield Lane(AsyncDeviceApiClient(http, server_url), http)
