"""Management API for what the server believes about a device: the region, deployment
date and carrier decisions use (changed only here, each change audited), the region the
device last claimed, and the builds that failed on it (retried here, one device at a
time)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path as PathParam
from fastapi import Request
from pydantic import BaseModel, Field

from patchline.errors import NotFoundError
from patchline.fleet.beliefs import beliefs_json, change_facts, retry_build
from patchline.server.api.bodies import IsoDate
from patchline.server.api.deps import (
    Compliance,
    Reader,
    ReleaseManager,
    actor,
    in_thread,
    runtime,
)
from patchline.server.api.documented_errors import api_router
from patchline.server.api.schemas import DeviceBeliefs
from patchline.store.models import Device

router = api_router()

DeviceId = Annotated[str, PathParam(min_length=1, max_length=40)]


class DeviceFactsBody(BaseModel):
    """The vouched facts to change (at least one), and why."""

    region: str | None = Field(default=None, pattern=r"^[A-Z0-9][A-Z0-9-]{1,15}$")
    deployed_on: IsoDate | None = None
    carrier: str | None = Field(default=None, max_length=256)
    reason: str = Field(min_length=1, max_length=2000)


class RetryBody(BaseModel):
    """The build to offer the device again, and why."""

    build: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    reason: str = Field(min_length=1, max_length=2000)


@router.get("/devices/{device_id}/facts", tags=["devices"])
async def get_facts(request: Request, device_id: DeviceId, _caller: Reader) -> DeviceBeliefs:
    """The region, deployment date and carrier decisions use, the region the device last
    claimed (flagged when it differs), and the builds not offered to it again."""
    rt = runtime(request)

    def query() -> DeviceBeliefs:
        with rt.db.transaction() as session:
            row = session.get(Device, device_id)
            if row is None:
                raise NotFoundError(f"no device {device_id}")
            return DeviceBeliefs.model_validate(beliefs_json(row))

    return await in_thread(query)


@router.patch("/devices/{device_id}", tags=["devices"])
async def set_facts(
    request: Request, device_id: DeviceId, body: DeviceFactsBody, caller: Compliance
) -> DeviceBeliefs:
    """Change the device's vouched region, deployment date or carrier: decisions use them
    from its next check-in, on every process; each change is in the audit chain with its
    old value, who and why."""
    rt = runtime(request)
    changes = body.model_dump(exclude_none=True, exclude={"reason"})

    def change() -> DeviceBeliefs:
        with rt.db.transaction() as session:
            row = change_facts(
                session, device_id, changes, body.reason, actor(caller), rt.clock.now()
            )
            return DeviceBeliefs.model_validate(beliefs_json(row))

    result = await in_thread(change)
    rt.devices.forget(device_id)
    return result


@router.post("/devices/{device_id}/retry", tags=["devices"])
async def retry(
    request: Request, device_id: DeviceId, body: RetryBody, caller: ReleaseManager
) -> DeviceBeliefs:
    """Offer a build that failed on this device to it again (from its next check-in, on
    every process); recorded in the audit chain with the failure it forgives."""
    rt = runtime(request)

    def change() -> DeviceBeliefs:
        with rt.db.transaction() as session:
            row = retry_build(
                session, device_id, body.build, body.reason, actor(caller), rt.clock.now()
            )
            return DeviceBeliefs.model_validate(beliefs_json(row))

    result = await in_thread(change)
    rt.devices.forget(device_id)
    return result
