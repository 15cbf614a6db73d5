"""``/api/devices``: find devices, read one with its reports, explain what it would get,
decommission it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path as PathParam
from fastapi import Query
from sqlalchemy.orm import Session

from patchline.fleet import device_queries as fleet
from patchline.fleet.decommission import decommission
from patchline.server.api.bodies import IsoDate, Reason
from patchline.server.api.deps import Admin, Reader, Rt, actor, in_session, in_thread
from patchline.server.api.documented_errors import api_router
from patchline.server.api.schemas import DeviceDetail, DeviceOut, DevicePageOut, Explanation

router = api_router(tags=["devices"])


@router.get("/devices")
async def list_devices(
    rt: Rt,
    _caller: Reader,
    model: str | None = None,
    region: str | None = None,
    build: str | None = None,
    install_state: str | None = None,
    decommissioned: bool | None = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DevicePageOut:
    """Devices matching the filters (``decommissioned``: only those taken out of service,
    or with false only those in service), a page at a time, ordered by id."""
    where = fleet.DeviceFilter(model, region, build, install_state, decommissioned)

    def query(session: Session) -> DevicePageOut:
        found = fleet.find_devices(session, where, page, page_size)
        devices = [DeviceOut.model_validate(r) for r in found.devices]
        return DevicePageOut(total=found.total, page=page, page_size=page_size, devices=devices)

    return await in_session(rt, query)


@router.get("/devices/{device_id}")
async def get_device(rt: Rt, device_id: str, _caller: Reader) -> DeviceDetail:
    """One device, with its latest install reports."""
    return await in_session(
        rt,
        lambda s: DeviceDetail.of(
            fleet.get_device(s, device_id), fleet.latest_reports(s, device_id)
        ),
    )


@router.get("/devices/{device_id}/explain")
async def explain_device(
    rt: Rt,
    device_id: str,
    _caller: Reader,
    at: Annotated[
        IsoDate | None, Query(description="The day asked about: the rules as they stood then.")
    ] = None,
    known_on: Annotated[
        IsoDate | None,
        Query(
            description="Read only the rules and amendments recorded by the end of this day "
            "(default: everything known now), so that a back-dated amendment does not "
            "change what was known then."
        ),
    ] = None,
) -> Explanation:
    """What this device would get now (or on date ``at``), and why, rule by rule: the
    rules as they stood on ``at``, as known now or as known on ``known_on``."""
    row = await in_session(rt, lambda s: fleet.get_device(s, device_id))
    day = at or rt.clock.now().date()
    answer = fleet.explain_device(row, rt.director.catalog, day, known_on)
    return Explanation.model_validate(answer)


@router.post("/devices/{device_id}/decommission")
async def decommission_device(
    rt: Rt,
    device_id: Annotated[str, PathParam(min_length=1, max_length=40)],
    body: Reason,
    caller: Admin,
) -> DeviceOut:
    """Take a device out of service: its credential gets 401 on the device API, it is
    offered nothing, it cannot enroll again; its records stay."""
    now = rt.clock.now()
    result = await in_session(
        rt,
        lambda s: DeviceOut.model_validate(
            decommission(s, device_id, body.reason, actor(caller), now)
        ),
    )
    await in_thread(rt.reload_catalog_if_changed)
    return result
