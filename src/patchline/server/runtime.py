"""Everything one server process holds: settings, database, director, writer, caches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from patchline.audit import AuditRecord
from patchline.clock import Clock
from patchline.director.answers import Director
from patchline.director.catalog import aware, load_catalog
from patchline.director.releases_sync import catalog_version, sync_releases
from patchline.fleet.decommission import decommissioned_ids
from patchline.fleet.rollouts import due, evaluate
from patchline.repository.layout import RepositoryLayout
from patchline.repository.state import load_state
from patchline.server.config import ServerTuning
from patchline.server.devices_cache import DeviceLoader
from patchline.server.metrics import Metrics
from patchline.server.writer import AuditWrite, BatchWriter, Waiter
from patchline.settings import Settings
from patchline.store.db import Database
from patchline.store.models import Device
from patchline.webhooks.deliver import Deliverer

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Runtime:
    """The state of one server process; built by ``patchline.server.app.create_app``."""

    settings: Settings
    tuning: ServerTuning
    db: Database
    clock: Clock
    director: Director
    writer: BatchWriter
    devices: DeviceLoader
    #: Sends the webhook outbox (None: this process sends none).
    deliverer: Deliverer | None = None
    metrics: Metrics = field(default_factory=Metrics)
    #: Devices taken out of service, read with the catalog (a decommission bumps it).
    decommissioned: frozenset[str] = frozenset()
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    #: Devices whose vouched facts or failed builds changed, as already re-read here
    #: (id -> change instant), and the latest change seen.
    _beliefs_handled: dict[str, datetime] = field(default_factory=dict)
    _beliefs_since: datetime | None = None

    @property
    def repository(self) -> RepositoryLayout | None:
        """The image repository in the home directory, if there is one."""
        layout = RepositoryLayout(self.settings.home)
        return layout if layout.timestamp_file.exists() else None

    def sync_releases(self) -> list[str]:
        """Copy newly signed targets from the repository into the database."""
        layout = self.repository
        if layout is None:
            return []
        state = load_state(layout)
        with self.db.transaction() as session:
            return sync_releases(session, state, self.clock.now())

    def reload_catalog_if_changed(self) -> bool:
        """Reload releases and rules when another process (or this one) changed them."""
        with self.db.reading_session() as session:
            version = catalog_version(session)
            if version == self.director.catalog.version:
                return False
            catalog = load_catalog(session)
            self.decommissioned = decommissioned_ids(session)
        self.director.use_catalog(catalog)
        self.metrics.catalog_version.set(catalog.version)
        return True

    def forget_changed_devices(self) -> int:
        """Drop from the device cache every device whose vouched facts or failed builds
        changed (through any process) since the last look; return how many. Changes up
        to a minute older than the latest seen are looked at again, for clocks of
        several processes that differ a little."""
        window = timedelta(minutes=1)
        with self.db.reading() as conn:
            if self._beliefs_since is None:
                latest = conn.execute(select(func.max(Device.beliefs_changed_at))).scalar()
                self._beliefs_since = aware(latest) if latest is not None else _EPOCH
                return 0
            query = select(Device.id, Device.beliefs_changed_at).where(
                Device.beliefs_changed_at >= self._beliefs_since - window
            )
            rows = conn.execute(query).all()
        forgotten = 0
        for device_id, changed_at in rows:
            changed = aware(changed_at)
            if self._beliefs_handled.get(device_id) != changed:
                self.devices.forget(device_id)
                self._beliefs_handled[device_id] = changed
                forgotten += 1
            if changed > self._beliefs_since:
                self._beliefs_since = changed
        oldest = self._beliefs_since - window
        self._beliefs_handled = {k: v for k, v in self._beliefs_handled.items() if v >= oldest}
        return forgotten

    def evaluate_rollouts(self) -> list[tuple[str, str]]:
        """Apply the brakes and the phase schedule of the active rollouts: one read of
        all their figures, then each rollout that calls for a change in its own
        transaction with its row locked (so a change is taken once, whichever process
        sees it first); the (rollout, new state) pairs this process changed. The read
        takes no lock, so with nothing due no write transaction is opened."""
        now = self.clock.now()
        with self.db.reading_session() as session:
            ids = due(session, now)
        changed = []
        for rollout_id in ids:
            with self.db.transaction() as session:
                state = evaluate(session, rollout_id, now)
            if state is not None:
                log.info("rollout %s is now %s", rollout_id, state)
                changed.append((rollout_id, state))
        return changed

    async def record(self, records: list[AuditRecord]) -> None:
        """Append management audit records; returns once they are durable."""
        loop = asyncio.get_running_loop()
        waiter: Waiter = Waiter(loop, loop.create_future())
        self.writer.submit(AuditWrite(records, waiter))
        await waiter.future

    async def start(self) -> None:
        """Start the writer, the webhook deliverer and the background catalog watcher."""
        self.writer.start()
        if self.deliverer is not None:
            self.deliverer.start()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.sync_releases)
        await loop.run_in_executor(None, self.reload_catalog_if_changed)
        await loop.run_in_executor(None, self.forget_changed_devices)
        self._tasks.append(asyncio.create_task(self._watch()))

    async def stop(self) -> None:
        """Stop background work and flush the writer."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.get_running_loop().run_in_executor(None, self.writer.stop)
        if self.deliverer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.deliverer.stop)
        self.db.dispose()

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        ticks = 0
        while True:
            await asyncio.sleep(self.tuning.catalog_poll_seconds)
            ticks += 1
            try:
                if ticks % 5 == 0:
                    await loop.run_in_executor(None, self.sync_releases)
                await loop.run_in_executor(None, self.evaluate_rollouts)
                await loop.run_in_executor(None, self.reload_catalog_if_changed)
                await loop.run_in_executor(None, self.forget_changed_devices)
            except Exception as exc:  # keep serving with the catalog we have
                log.warning("catalog refresh failed: %s", exc)
            self.metrics.signatures.set(self.director.signatures)
            self.metrics.writer_batches.set(self.writer.stats.batches)
            self.metrics.writer_failures.set(self.writer.stats.failures)
