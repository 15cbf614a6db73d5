"""Devices: search and filter, a page at a time; one device with its identity, build,
slot, reports over time, and what it is offered today or on a chosen date, and why
(the same services as ``/api/devices``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from patchline.fleet import device_queries as fleet
from patchline.fleet.device_decisions import DecisionPage, device_decisions
from patchline.server.api.bodies import IsoDate
from patchline.server.api.deps import Rt, in_session
from patchline.server.console.access import Reader
from patchline.server.console.render import page
from patchline.store.models import Device, InstallReport

router = APIRouter()
PAGE_SIZE = 50


def _blank(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


@router.get("/devices", include_in_schema=False)
async def devices_page(
    request: Request,
    rt: Rt,
    seen: Reader,
    q: str | None = None,
    model: str | None = None,
    region: str | None = None,
    build: str | None = None,
    install_state: str | None = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
) -> Response:
    """Devices matching the filters, ``PAGE_SIZE`` at a time, ordered by id."""
    where = fleet.DeviceFilter(
        model=_blank(model),
        region=_blank(region),
        build=_blank(build),
        install_state=_blank(install_state),
        search=_blank(q),
    )
    found = await in_session(rt, lambda s: fleet.find_devices(s, where, page_number, PAGE_SIZE))
    pages = max(1, -(-found.total // PAGE_SIZE))
    return page(
        request,
        seen,
        "devices.html",
        title="Devices",
        found=found,
        where=where,
        page_number=page_number,
        pages=pages,
        query={
            "q": q or "",
            "model": model or "",
            "region": region or "",
            "build": build or "",
            "install_state": install_state or "",
        },
    )


@router.get("/devices/{device_id}", include_in_schema=False)
async def device_page(
    request: Request,
    rt: Rt,
    device_id: str,
    seen: Reader,
    at: IsoDate | None = None,
    known_on: IsoDate | None = None,
    decisions_page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """One device, its latest reports, its recorded decisions (page ``decisions_page``,
    newest first), and what it would be offered on ``at`` (default today) under the
    rules as known now or on ``known_on``."""

    def load(session: Session) -> tuple[Device, list[InstallReport], DecisionPage]:
        device = fleet.get_device(session, device_id)
        reports = fleet.latest_reports(session, device_id)
        return device, reports, device_decisions(session, device_id, decisions_page)

    row, reports, decisions = await in_session(rt, load)
    day = at or rt.clock.now().date()
    explanation = fleet.explain_device(row, rt.director.catalog, day, known_on)
    return page(
        request,
        seen,
        "device.html",
        title=f"Device {row.id}",
        device=row,
        reports=reports,
        decisions=decisions,
        explanation=explanation,
        day=day,
        known_on=known_on,
    )
