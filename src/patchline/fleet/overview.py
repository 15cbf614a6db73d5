"""The fleet at a glance, counted by the database (GROUP BY, never a loop over devices):
devices per security patch level, per model and region, install reports per day, and
installs per day by the source they came from. Reports per day are read from
``report_days``, which the writer keeps as it stores reports (``count_reports``), so the
charts cost a few rows whatever the number of reports."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Date, case, cast, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from patchline.director.catalog import aware
from patchline.store.models import Device, InstallReport, ReportDay
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


@dataclass(frozen=True)
class FleetCell:
    """The devices in service of one model, region and security patch level: how many,
    and how many checked in since the reachability cut-off."""

    model: str
    region: str
    patch_level: date
    devices: int
    reachable: int


def _day(session: Session, column: Any) -> Any:
    """The calendar day (UTC) of a timestamp column, in this database's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def fleet_cells(session: Session, seen_since: datetime) -> list[FleetCell]:
    """The devices in service counted per (model, region, security patch level) in one
    pass of the database, with how many checked in since ``seen_since``: every figure of
    the overview and the support page is a sum of these cells."""
    reachable = func.sum(case((Device.last_seen_at >= seen_since, 1), else_=0))
    query = (
        select(Device.model, Device.region, Device.security_patch_level, func.count(), reachable)
        .where(Device.decommissioned_at.is_(None))
        .group_by(Device.model, Device.region, Device.security_patch_level)
    )
    return [
        FleetCell(m, r, _as_date(p), int(n), int(seen or 0))
        for m, r, p, n, seen in session.execute(query)
    ]


def devices_by_patch_level(cells: Iterable[FleetCell]) -> list[PatchLevelCount]:
    """Devices per (model, security patch level), oldest level first."""
    totals: Counter[tuple[date, str]] = Counter()
    for c in cells:
        totals[(c.patch_level, c.model)] += c.devices
    return [PatchLevelCount(m, p, n) for (p, m), n in sorted(totals.items())]


def devices_by_model_region(cells: Iterable[FleetCell], stale_before: date) -> list[ModelRegionRow]:
    """Devices per (model, region), their oldest and newest patch level, and how many
    have a security patch level before ``stale_before``."""
    grouped: dict[tuple[str, str], list[FleetCell]] = {}
    for c in cells:
        grouped.setdefault((c.model, c.region), []).append(c)
    return [
        ModelRegionRow(
            model,
            region,
            sum(c.devices for c in group),
            min(c.patch_level for c in group),
            max(c.patch_level for c in group),
            sum(c.devices for c in group if c.patch_level < stale_before),
        )
        for (model, region), group in sorted(grouped.items())
    ]


def source_kind(label: str) -> str:
    """``server``, ``mirror`` or ``card`` from a report's source label ("Mirror URL",
    "SD card PATH", "bundle ID" for an offline receipt, else the server)."""
    lowered = label.lower()
    if lowered.startswith("mirror"):
        return "mirror"
    if lowered.startswith(("sd card", "bundle")):
        return "card"
    return "server"


def count_reports(conn: Connection, reports: Iterable[Mapping[str, Any]]) -> None:
    """Add newly stored install reports (``received_at``, ``status``, ``source``) to the
    per-day counts, in the caller's transaction; concurrent writers add up (an upsert
    that increments, in key order)."""
    counts = Counter(
        (aware(r["received_at"]).astimezone(UTC).date(), r["status"], source_kind(r["source"]))
        for r in reports
    )
    if not counts:
        return
    rows = [
        {"day": day, "status": status, "source": source, "count": n}
        for (day, status, source), n in sorted(counts.items())
    ]
    upsert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = upsert(ReportDay)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[ReportDay.day, ReportDay.status, ReportDay.source],
            set_={"count": ReportDay.count + stmt.excluded.count},
        ),
        rows,
    )


def recount_reports(session: Session) -> None:
    """Rebuild the per-day counts from every stored report (after a bulk load that
    bypassed the writer)."""
    session.execute(delete(ReportDay))
    day = _day(session, InstallReport.received_at)
    lowered = func.lower(InstallReport.source)
    kind = case(
        (lowered.like("mirror%"), "mirror"),
        (lowered.like("sd card%") | lowered.like("bundle%"), "card"),
        else_="server",
    )
    query = select(day, InstallReport.status, kind, func.count()).group_by(
        day, InstallReport.status, kind
    )
    session.execute(insert(ReportDay).from_select(["day", "status", "source", "count"], query))


def reports_per_day(session: Session, since: date) -> list[DayCount]:
    """Install reports received from day ``since`` on, per day and status
    (``OUTCOMES``)."""
    query = (
        select(ReportDay.day, ReportDay.status, func.sum(ReportDay.count))
        .where(ReportDay.day >= since, ReportDay.status.in_(OUTCOMES))
        .group_by(ReportDay.day, ReportDay.status)
    )
    return sorted(DayCount(_as_date(d), s, int(n)) for d, s, n in session.execute(query))


def installs_per_day_by_source(session: Session, since: date) -> list[DayCount]:
    """Installs (reports of status ``installed``) received from day ``since`` on, per
    day and source kind (``SOURCES``)."""
    query = (
        select(ReportDay.day, ReportDay.source, func.sum(ReportDay.count))
        .where(ReportDay.day >= since, ReportDay.status == ReportStatus.INSTALLED.value)
        .group_by(ReportDay.day, ReportDay.source)
    )
    return sorted(DayCount(_as_date(d), k, int(n)) for d, k, n in session.execute(query))
