"""What one server process remembers about each device it has seen."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from patchline.bounded_cache import BoundedCache
from patchline.fleet.beliefs import failure_sentences
from patchline.store.db import Database
from patchline.store.models import Device


@dataclass
class DeviceEntry:
    """Identity (immutable but for the credential) and what this process last wrote."""

    device_id: str
    credential_hash: bytes
    model: str
    #: The region and deployment date vouched for (never what a check-in claims).
    region: str
    deployed_on: date
    carrier: str = ""
    #: Builds that failed on the device -> the sentence a decision gives for not
    #: offering them again.
    failed_builds: dict[str, str] = field(default_factory=dict)
    #: The reported state this process last wrote (build, hash, patch level, slot,
    #: network, claimed region); a check-in that differs is written.
    written_state: tuple[Any, ...] = ()
    written_seen_at: datetime | None = None
    decision_digest: str | None = None
    loaded_at: float = field(default_factory=time.monotonic)


def load_devices(db: Database, device_ids: list[str]) -> dict[str, DeviceEntry]:
    """Read the identities of several devices in one query; unknown ids are absent."""
    query = select(
        Device.id,
        Device.credential_hash,
        Device.model,
        Device.region,
        Device.deployed_on,
        Device.carrier,
        Device.last_decision,
        Device.failed_builds,
    ).where(Device.id.in_(device_ids))
    with db.reading() as conn:
        rows = conn.execute(query).all()
    return {
        row.id: DeviceEntry(
            device_id=row.id,
            credential_hash=bytes(row.credential_hash),
            model=row.model,
            region=row.region,
            deployed_on=row.deployed_on,
            carrier=row.carrier,
            decision_digest=row.last_decision,
            failed_builds=failure_sentences(row.failed_builds),
        )
        for row in rows
    }


class DeviceLoader:
    """Loads devices missing from the cache, many per query.

    Requests that miss during one turn of the event loop share one ``IN (...)`` query,
    so a wave of first check-ins costs a few queries, not one per device.
    """

    def __init__(self, db: Database, cache: BoundedCache[str, DeviceEntry], max_batch: int = 500):
        self._db = db
        self._cache = cache
        self._max_batch = max_batch
        self._pending: dict[str, asyncio.Future[DeviceEntry | None]] = {}
        self._flushing = False

    @property
    def capacity(self) -> int:
        """The most devices kept in memory."""
        return self._cache.capacity

    def cached(self, device_id: str) -> DeviceEntry | None:
        """The device's entry if this process holds it (no await: the hot path)."""
        return self._cache.get(device_id)

    async def get(self, device_id: str) -> DeviceEntry | None:
        """The device's entry from the cache, or loaded with others; None when unknown."""
        entry = self._cache.get(device_id)
        if entry is not None:
            return entry
        future = self._pending.get(device_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._pending[device_id] = future
            if not self._flushing:
                self._flushing = True
                asyncio.get_running_loop().create_task(self._flush())
        return await future

    def forget(self, device_id: str) -> None:
        """Drop a device from the cache (its credential changed)."""
        self._cache.forget(device_id)

    async def reload(self, entry: DeviceEntry, older_than: float) -> DeviceEntry | None:
        """Read a cached device again if its entry is older than ``older_than`` seconds
        (another process may have re-enrolled it with a new credential); else keep it."""
        if time.monotonic() - entry.loaded_at < older_than:
            return entry
        self._cache.forget(entry.device_id)
        return await self.get(entry.device_id)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                await asyncio.sleep(0)  # let this turn's other requests join
                ids = list(self._pending)[: self._max_batch]
                futures = {i: self._pending.pop(i) for i in ids}
                try:
                    found = await loop.run_in_executor(None, load_devices, self._db, ids)
                except Exception as exc:
                    for future in futures.values():
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for device_id, future in futures.items():
                    entry = found.get(device_id)
                    if entry is not None:
                        self._cache.put(device_id, entry)
                    if not future.done():
                        future.set_result(entry)
        finally:
            self._flushing = False
