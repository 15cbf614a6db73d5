"""The fleet at a glance, counted by the database (GROUP BY, never a loop over devices):
devices per security patch level, per model and region, install reports per day, and
installs per day by the source they came from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, case, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from patchline.store.models import Device, InstallReport
from patchline.wire.device_api import ReportStatus

#: The report statuses a day's outcome chart counts.
OUTCOMES = (
    ReportStatus.INSTALLED.value,
    ReportStatus.BOOTED_HEALTHY.value,
    ReportStatus.FAILED.value,
    ReportStatus.ROLLED_BACK.value,
)
#: Where an install came from, as the overview names it.
SOURCES = ("server", "mirror", "card")


@dataclass(frozen=True)
class PatchLevelCount:
    """How many devices in service of a model are on a security patch level."""

    model: str
    patch_level: date
    devices: int


@dataclass(frozen=True)
class ModelRegionRow:
    """The devices in service of one model in one region: how many, their oldest and
    newest patch level, and how many have a patch older than the cut-off."""

    model: str
    region: str
    devices: int
    oldest: date
    newest: date
    stale: int


@dataclass(frozen=True, order=True)
class DayCount:
    """How many install reports of one kind (a status, or a source) a day received."""

    day: date
    key: str
    count: int


def _in_service() -> ColumnElement[bool]:
    return Device.decommissioned_at.is_(None)


def _day(session: Session, column: Any) -> Any:
    """The calendar day (UTC) of a timestamp column, in this database's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def devices_by_patch_level(session: Session) -> list[PatchLevelCount]:
    """Devices in service per (model, security patch level), oldest level first."""
    query = (
        select(Device.model, Device.security_patch_level, func.count())
        .where(_in_service())
        .group_by(Device.model, Device.security_patch_level)
        .order_by(Device.security_patch_level, Device.model)
    )
    return [PatchLevelCount(m, _as_date(p), n) for m, p, n in session.execute(query)]


def devices_by_model_region(session: Session, stale_before: date) -> list[ModelRegionRow]:
    """Devices in service per (model, region), with how many have a security patch level
    before ``stale_before``."""
    stale = func.sum(case((Device.security_patch_level < stale_before, 1), else_=0))
    query = (
        select(
            Device.model,
            Device.region,
            func.count(),
            func.min(Device.security_patch_level),
            func.max(Device.security_patch_level),
            stale,
        )
        .where(_in_service())
        .group_by(Device.model, Device.region)
        .order_by(Device.model, Device.region)
    )
    return [
        ModelRegionRow(m, r, n, _as_date(lo), _as_date(hi), int(s or 0))
        for m, r, n, lo, hi, s in session.execute(query)
    ]


def reports_per_day(session: Session, since: datetime) -> list[DayCount]:
    """Install reports received from ``since`` on, per day and status (``OUTCOMES``)."""
    day = _day(session, InstallReport.received_at)
    query = (
        select(day, InstallReport.status, func.count())
        .where(InstallReport.received_at >= since, InstallReport.status.in_(OUTCOMES))
        .group_by(day, InstallReport.status)
    )
    return sorted(DayCount(_as_date(d), s, n) for d, s, n in session.execute(query))


def source_kind(column: Any) -> Any:
    """``server``, ``mirror`` or ``card`` from a report's source label ("Mirror URL",
    "SD card PATH", "bundle ID" for an offline receipt, else the server)."""
    lowered = func.lower(column)
    return case(
        (lowered.like("mirror%"), "mirror"),
        (lowered.like("sd card%") | lowered.like("bundle%"), "card"),
        else_="server",
    )


def installs_per_day_by_source(session: Session, since: datetime) -> list[DayCount]:
    """Installs (reports of status ``installed``) received from ``since`` on, per day
    and source kind (``SOURCES``)."""
    day = _day(session, InstallReport.received_at)
    kind = source_kind(InstallReport.source)
    query = (
        select(day, kind, func.count())
        .where(
            InstallReport.received_at >= since,
            InstallReport.status == ReportStatus.INSTALLED.value,
        )
        .group_by(day, kind)
    )
    return sorted(DayCount(_as_date(d), k, n) for d, k, n in session.execute(query))


def devices_in_service(session: Session) -> int:
    """How many devices are enrolled and not decommissioned."""
    return session.scalar(select(func.count()).select_from(Device).where(_in_service())) or 0
