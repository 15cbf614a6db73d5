"""Running the real agent for many simulated phones, on worker processes.

Each job is one thing a phone does at one simulated instant: come out of the factory,
enroll with the maker's server, or run ``Agent.update()`` (optionally with an SD card
inserted). Jobs of one phone never run at the same time; the result of each is a small
``Outcome`` the story tallies.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from multiprocessing import get_context
from pathlib import Path

import msgspec

from patchline.agent import Agent, DeviceConfig, DeviceDir, create_device
from patchline.agent.enrollment import enroll
from patchline.agent.sources import Source, SourceKind
from patchline.clock import FixedClock
from patchline.errors import NoUpdateSourceError, PatchlineError, UpdateRefusedError
from patchline.transport.http import http_pool


class Kind(enum.StrEnum):
    """What a job does."""

    CREATE = "create"
    ENROLL = "enroll"
    UPDATE = "update"


class Status(enum.StrEnum):
    """How a job ended."""

    DONE = "done"  # created or enrolled
    INSTALLED = "installed"
    UP_TO_DATE = "up-to-date"
    REFUSED = "refused"  # a source verified and offered something this phone may not take
    NO_SOURCE = "no-source"  # nothing reachable, or nothing verified
    FAILED = "failed"


@dataclass(frozen=True)
class Job:
    """One thing one phone does at ``at``."""

    kind: Kind
    phone: int
    path: str
    at: datetime
    #: UPDATE: an SD card folder inserted for this run.
    card: str = ""
    #: CREATE: the factory image.
    image: str = ""
    #: CREATE: the device configuration, as JSON.
    config: bytes = b""
    #: CREATE: the roots the phone ships with; the factory build and its patch level.
    shipped_root: bytes = b""
    director_root: bytes = b""
    build: str = ""
    security_patch_level: str = ""
    #: ENROLL: the fleet's enrollment token, and whether the phone then loses its
    #: network for good (enrolled in the shop, offline at home).
    token: str = ""
    offline: bool = False


@dataclass(frozen=True)
class Outcome:
    """What a job did, in the few words the story's report needs."""

    phone: int
    at: datetime
    status: Status
    build: str = ""
    source: str = ""  # SourceKind value of the source that delivered, if any
    message: str = ""
    delta: bool = False


def run_job(job: Job) -> Outcome:
    """Do ``job`` and say how it ended; an error of the agent is an outcome, not a crash."""
    device = DeviceDir(Path(job.path))
    try:
        if job.kind is Kind.CREATE:
            create_device(
                device.path,
                msgspec.json.decode(job.config, type=DeviceConfig),
                shipped_root=job.shipped_root,
                director_root=job.director_root or None,
                image=Path(job.image),
                build=job.build,
                security_patch_level=date.fromisoformat(job.security_patch_level),
            )
            return Outcome(job.phone, job.at, Status.DONE, job.build)
        if job.kind is Kind.ENROLL:
            device_id = enroll(
                device,
                http_pool(5, 30),
                token=job.token,
                serial=device.path.name,
                hardware_id=f"hw-{device.path.name}",
            )
            if job.offline:
                go_offline(device)
            return Outcome(job.phone, job.at, Status.DONE, message=device_id)
        return _update(device, job)
    except PatchlineError as exc:
        return Outcome(job.phone, job.at, Status.FAILED, message=exc.message.splitlines()[0])


def _update(device: DeviceDir, job: Job) -> Outcome:
    config = device.load_config()
    if job.card:
        device.save_config(msgspec.structs.replace(config, bundles=[job.card]))
    try:
        result = Agent(device, clock=FixedClock(job.at)).update()
    except UpdateRefusedError as exc:
        return Outcome(job.phone, job.at, Status.REFUSED, message=exc.message)
    except NoUpdateSourceError as exc:
        return Outcome(job.phone, job.at, Status.NO_SOURCE, message=exc.message)
    except PatchlineError as exc:
        return Outcome(job.phone, job.at, Status.FAILED, message=exc.message)
    finally:
        if job.card:
            device.save_config(config)
    if result.status == "installed":
        return Outcome(
            job.phone,
            job.at,
            Status.INSTALLED,
            result.build,
            source_kind(result.source),
            result.message,
            "as a delta" in result.message,
        )
    return Outcome(job.phone, job.at, Status.UP_TO_DATE, result.build, source_kind(result.source))


def go_offline(device: DeviceDir) -> None:
    """Leave ``device`` with no server and no mirror: only SD cards reach it."""
    config = device.load_config()
    device.save_config(
        msgspec.structs.replace(config, server_url="", server_repository_url="", mirrors=[])
    )


def source_kind(label: str) -> str:
    """The kind of source a label such as ``Mirror http://...`` names ("" if none)."""
    for kind in SourceKind:
        prefix = Source(kind, "").label
        if label.startswith(prefix):
            return kind.value
    return ""


class Workers:
    """A pool of worker processes running jobs; three per core by default.

    A phone's run spends much of its time waiting on a host (a check-in acknowledged
    only once written, a mirror answering), so more processes than cores keep the
    cores busy: on 2 cores, 6 workers replayed 300 phones in 0.65 x the time of 2.
    """

    def __init__(self, count: int | None = None) -> None:
        self.count = count or 3 * (os.cpu_count() or 1)
        self._pool: Executor = ProcessPoolExecutor(
            max_workers=self.count, mp_context=get_context("spawn")
        )

    def run(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        """Run ``jobs`` (no two for one phone), yielding outcomes in job order."""
        batch = list(jobs)
        chunk = max(1, min(64, len(batch) // (self.count * 8) or 1))
        yield from self._pool.map(run_job, batch, chunksize=chunk)

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.shutdown(wait=True, cancel_futures=True)
