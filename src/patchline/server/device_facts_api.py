"""Management API for what the server believes about a device: the region, deployment
date and carrier decisions use (changed only here, each change audited), the region the
device last claimed, and the builds that failed on it (retried here, one device at a
time)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from patchline.errors import NotFoundError
from patchline.fleet.beliefs import beliefs_json, change_facts, retry_build
from patchline.server.management_api import (
    Compliance,
    Reader,
    ReleaseManager,
    in_thread,
    runtime,
)
from patchline.store.models import Device

router = APIRouter(prefix="/api")

DeviceId = Annotated[str, PathParam(min_length=1, max_length=40)]


class DeviceFactsBody(BaseModel):
    """The vouched facts to change (at least one), and why."""

    region: str | None = Field(default=None, pattern=r"^[A-Z0-9][A-Z0-9-]{1,15}$")
    deployed_on: date | None = None
    carrier: str | None = Field(default=None, max_length=256)
    reason: str = Field(min_length=1, max_length=2000)


class RetryBody(BaseModel):
    """The build to offer the device again, and why."""

    build: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    reason: str = Field(min_length=1, max_length=2000)


@router.get("/devices/{device_id}/facts", tags=["devices"])
async def get_facts(request: Request, device_id: DeviceId, _caller: Reader) -> dict[str, Any]:
    """The region, deployment date and carrier decisions use, the region the device last
    claimed (flagged when it differs), and the builds not offered to it again."""
    rt = runtime(request)

    def query() -> dict[str, Any]:
        with rt.db.transaction() as session:
            row = session.get(Device, device_id)
            if row is None:
                raise NotFoundError(f"no device {device_id}")
            return beliefs_json(row)

    result: dict[str, Any] = await in_thread(query)
    return result


@router.patch("/devices/{device_id}", tags=["devices"])
async def set_facts(
    request: Request, device_id: DeviceId, body: DeviceFactsBody, caller: Compliance
) -> dict[str, Any]:
    """Change the device's vouched region, deployment date or carrier: decisions use them
    from its next check-in, on every process; each change is in the audit chain with its
    old value, who and why."""
    rt = runtime(request)
    changes = body.model_dump(exclude_none=True, exclude={"reason"})

    def change() -> dict[str, Any]:
        with rt.db.transaction() as session:
            row = change_facts(
                session, device_id, changes, body.reason, f"token:{caller[0]}", rt.clock.now()
            )
            return beliefs_json(row)

    result: dict[str, Any] = await in_thread(change)
    rt.devices.forget(device_id)
    return result


@router.post("/devices/{device_id}/retry", tags=["devices"])
async def retry(
    request: Request, device_id: DeviceId, body: RetryBody, caller: ReleaseManager
) -> dict[str, Any]:
    """Offer a build that failed on this device to it again (from its next check-in, on
    every process); recorded in the audit chain with the failure it forgives."""
    rt = runtime(request)

    def change() -> dict[str, Any]:
        with rt.db.transaction() as session:
            row = retry_build(
                session, device_id, body.build, body.reason, f"token:{caller[0]}", rt.clock.now()
            )
            return beliefs_json(row)

    result: dict[str, Any] = await in_thread(change)
    rt.devices.forget(device_id)
    return result
