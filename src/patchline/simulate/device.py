"""One simulated device: what it runs, and what it does when its turn comes.

A device speaks the real device API (``AsyncDeviceApiClient``). At its turn it checks in;
offered an install it "downloads" (a HEAD or the first KiB of the target, or nothing),
reports downloading and installed, and reboots at its next turn. Then, as the failure
model draws: it fails to boot and rolls back (reporting it, or not: the server's
reconciliation catches it at the check-in that follows), or it is never heard from
again, or it boots healthy and reports so. A build it failed to boot it does not take
again. Every draw comes from the device's own random stream, so a run is the same for a
seed whatever order the devices' calls interleave in.
"""

from __future__ import annotations

import enum
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import httpx

from patchline.errors import DownloadFailedError, PatchlineError, ServerBusyError
from patchline.simulate.catalog import Build, Catalog
from patchline.simulate.failures import FailureModel
from patchline.simulate.report import DayTally
from patchline.transport.backoff import wait_before_asking
from patchline.transport.device_api_async import AsyncDeviceApiClient
from patchline.wire.device_api import (
    CheckIn,
    EnrollRequest,
    Network,
    Report,
    ReportBatch,
    ReportCode,
    ReportStatus,
    Slot,
    SlotState,
)
from patchline.wire.paths import consistent_name

REGIONS = ("DE", "FR", "US", "BR", "IN", "JP")


class Fetch(enum.StrEnum):
    """How much of an offered target a device downloads."""

    NONE = "none"
    HEAD = "head"  # a HEAD request: the target exists and has its length
    RANGE = "range"  # its first KiB (Range: bytes=0-1023)


class Phase(enum.Enum):
    """Where a device is between turns."""

    RUNNING = "running"
    REBOOTING = "rebooting"  # an install is written to the other slot
    SILENT = "silent"  # never heard from again


@dataclass
class Lane:
    """One connection to the server: the device API over it, and plain HTTP for targets.
    Devices take turns on lanes, one call at a time each."""

    api: AsyncDeviceApiClient
    http: httpx.AsyncClient


@dataclass
class Services:
    """What every device shares: the releases, the failure model, the schedule, and how
    offered targets are fetched."""

    catalog: Catalog
    failures: FailureModel
    fetch: Fetch
    poll_interval: timedelta
    jitter: float  # a turn comes poll_interval x (1 +- jitter) after the last


@dataclass
class SimDevice:
    """One device's state."""

    index: int
    rng: random.Random
    model: str
    region: str
    deployed_on: date
    running: Build
    slot: Slot = Slot.A
    inactive_build: str | None = None
    last_boot_ok: bool = True
    device_id: str = ""
    credential: str = ""
    phase: Phase = Phase.RUNNING
    pending: Build | None = None
    pending_target: str = ""
    next_turn: datetime = datetime.min
    offline_from: datetime | None = None
    offline_until: datetime | None = None
    #: Builds it failed to boot, never taken again.
    failed: set[str] = field(default_factory=set)
    #: The install state the server should now show ("none" before any offer).
    expected_state: str = "none"
    rolled_back: bool = False
    #: Server errors in a row (503, 429, 5xx); 0 once the server answers.
    server_failures: int = 0
    #: When it first installed each build (simulated time), by build.
    installed_at: dict[str, datetime] = field(default_factory=dict)

    def enroll_request(self, serial: str) -> EnrollRequest:
        """What the device says about itself when it enrolls."""
        return EnrollRequest(
            model=self.model,
            serial=serial,
            hardware_id=f"hw-{serial}",
            region=self.region,
            deployed_on=self.deployed_on.isoformat(),
            build=self.running.build,
            security_patch_level=self.running.security_patch_level,
        )

    def offline_at(self, now: datetime) -> bool:
        """Whether the device is offline at ``now``."""
        return (
            self.offline_from is not None
            and self.offline_until is not None
            and self.offline_from <= now < self.offline_until
        )

    def schedule_next(self, now: datetime, services: Services) -> None:
        """Set the next turn a jittered poll interval after ``now``."""
        factor = 1 + services.jitter * (2 * self.rng.random() - 1)
        self.next_turn = now + services.poll_interval * factor

    async def turn(self, now: datetime, services: Services, lane: Lane, tally: DayTally) -> None:
        """Take this device's turn at ``now`` on ``lane``; a refused or failed call is
        counted in ``tally.errors`` and the device tries again at its next turn. A busy
        server (503, 429, 5xx) is asked again after the agent's wait
        (``patchline.transport.backoff``: its Retry-After, jittered), not sooner."""
        try:
            if self.phase is Phase.REBOOTING:
                await self._reboot(now, services, lane, tally)
            else:
                await self._check_in(now, services, lane, tally)
        except ServerBusyError as exc:
            tally.errors += 1
            tally.told_to_wait += 1
            self.server_failures += 1
            wait = wait_before_asking(exc.retry_after, self.server_failures, self.rng)
            self.next_turn = now + timedelta(seconds=wait)
            return
        except PatchlineError:
            tally.errors += 1
            self.schedule_next(now, services)
            return
        self.server_failures = 0

    async def _check_in(
        self, now: datetime, services: Services, lane: Lane, tally: DayTally
    ) -> None:
        answer = await lane.api.check_in(self.credential, self._check_in_body())
        tally.check_ins += 1
        self.schedule_next(now, services)
        target = _offered_target(answer.director)
        if target is None:
            return
        tally.offers += 1
        build = services.catalog.targets.get(target[0])
        if build is None or build.build in self.failed or build == self.running:
            return
        await self._download(target, answer.mirrors, services, lane)
        self.pending, self.pending_target = build, target[0]
        await self._report(
            lane,
            now,
            [
                (ReportStatus.DOWNLOADING, ReportCode.NONE),
                (ReportStatus.INSTALLED, ReportCode.NONE),
            ],
        )
        tally.installs += 1
        self.installed_at.setdefault(build.build, now)
        self.expected_state = ReportStatus.INSTALLED.value
        self.phase = Phase.REBOOTING
        self.next_turn = now  # the reboot is the next step

    async def _reboot(self, now: datetime, services: Services, lane: Lane, tally: DayTally) -> None:
        build = self.pending
        assert build is not None
        self.phase = Phase.RUNNING
        failure = services.failures.for_install(self.model, build.build)
        draw = self.rng.random()
        if draw < failure.boot_failure:
            tally.boot_failures += 1
            self.failed.add(build.build)
            self.inactive_build, self.last_boot_ok = build.build, False
            self.expected_state = ReportStatus.ROLLED_BACK.value
            self.rolled_back = True
            if self.rng.random() < services.failures.rollback_reported:
                tally.rollbacks_reported += 1
                await self._report(lane, now, [(ReportStatus.ROLLED_BACK, ReportCode.BOOT_FAILED)])
            else:
                tally.rollbacks_silent += 1
            await self._check_in(now, services, lane, tally)
            return
        previous = self.running
        self.running, self.inactive_build, self.last_boot_ok = build, previous.build, True
        self.slot = Slot.B if self.slot is Slot.A else Slot.A
        if draw < failure.boot_failure + failure.silent_after_install:
            tally.went_silent += 1
            self.phase = Phase.SILENT
            return
        tally.booted_healthy += 1
        self.expected_state = ReportStatus.BOOTED_HEALTHY.value
        await self._report(lane, now, [(ReportStatus.BOOTED_HEALTHY, ReportCode.NONE)])
        await self._check_in(now, services, lane, tally)

    def _check_in_body(self) -> CheckIn:
        return CheckIn(
            build=self.running.build,
            build_sha256=self.running.sha256,
            security_patch_level=self.running.security_patch_level,
            slot=SlotState(
                active=self.slot,
                inactive_build=self.inactive_build,
                last_boot_ok=self.last_boot_ok,
            ),
            free_bytes=8 << 30,
            battery_percent=80,
            network=Network.WIFI,
            region=self.region,
        )

    async def _download(
        self, target: tuple[str, str], mirrors: list[str], services: Services, lane: Lane
    ) -> None:
        if services.fetch is Fetch.NONE or not mirrors:
            return
        path, sha256 = target
        url = f"{mirrors[0].rstrip('/')}/targets/{consistent_name(path, sha256)}"
        try:
            if services.fetch is Fetch.HEAD:
                response = await lane.http.head(url)
            else:
                response = await lane.http.get(url, headers={"Range": "bytes=0-1023"})
        except httpx.HTTPError as exc:
            raise DownloadFailedError(f"cannot fetch {url}: {exc}") from None
        if response.status_code not in (200, 206):
            raise DownloadFailedError(f"fetching {url} answered HTTP {response.status_code}")

    async def _report(
        self, lane: Lane, now: datetime, steps: list[tuple[ReportStatus, ReportCode]]
    ) -> None:
        """Report steps of the pending install."""
        build = self.pending
        assert build is not None
        reports = [
            Report(
                report_id=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                target=self.pending_target,
                build=build.build,
                status=status,
                at=now.isoformat(),
                code=code,
                source="server",
            )
            for status, code in steps
        ]
        await lane.api.send_reports(self.credential, ReportBatch(reports=reports))


def _offered_target(director: dict[str, object]) -> tuple[str, str] | None:
    """The (path, sha256) of the target a director answer says to install, if any."""
    signed = director.get("signed")
    if not isinstance(signed, dict):
        return None
    body = signed.get("patchline")
    targets = signed.get("targets")
    if not isinstance(body, dict) or body.get("action") != "install":
        return None
    if not isinstance(targets, dict) or len(targets) != 1:
        return None
    path, info = next(iter(targets.items()))
    hashes = info.get("hashes", {}) if isinstance(info, dict) else {}
    return str(path), str(hashes.get("sha256", ""))
