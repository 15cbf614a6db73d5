"""Reading the fleet: devices by filter a page at a time, one device with its latest
install reports, and what one device would be offered and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patchline.director.catalog import Catalog
from patchline.director.rollout_gate import Subject, apply_rollouts
from patchline.errors import NotFoundError
from patchline.fleet.beliefs import failure_sentences
from patchline.policy.decide import Decision, decide
from patchline.policy.explain import explain
from patchline.policy.facts import DeviceFacts
from patchline.store.models import Device, InstallReport
from patchline.wire.builds import build_sort_key

#: How many install reports ``latest_reports`` returns at most.
REPORTS_SHOWN = 50


@dataclass(frozen=True)
class DeviceFilter:
    """Which devices: each field given must match (``None``: any). ``decommissioned``:
    only those taken out of service, or with false only those in service."""

    model: str | None = None
    region: str | None = None
    build: str | None = None
    install_state: str | None = None
    decommissioned: bool | None = None
    #: The start of a device id or serial number.
    search: str | None = None


@dataclass(frozen=True)
class DevicePage:
    """One page of the devices matching a filter, and how many match in all."""

    total: int
    devices: list[Device]


def find_devices(session: Session, where: DeviceFilter, page: int, page_size: int) -> DevicePage:
    """The devices matching ``where`` ordered by id, page ``page`` (from 1) of
    ``page_size``; regions are matched without regard to case, ``search`` against the
    start of the id or the serial number."""
    stmt = select(Device)
    for column, value in (
        (Device.model, where.model),
        (Device.region, where.region.upper() if where.region else None),
        (Device.build, where.build),
        (Device.install_state, where.install_state),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if where.search:
        stmt = stmt.where(
            Device.id.startswith(where.search, autoescape=True)
            | Device.serial.startswith(where.search, autoescape=True)
        )
    if where.decommissioned is not None:
        taken = Device.decommissioned_at.is_not(None)
        stmt = stmt.where(taken if where.decommissioned else Device.decommissioned_at.is_(None))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Device.id).offset((page - 1) * page_size).limit(page_size))
    return DevicePage(total, list(rows))


def get_device(session: Session, device_id: str) -> Device:
    """The device ``device_id``; NotFoundError when there is none."""
    row = session.get(Device, device_id)
    if row is None:
        raise NotFoundError(f"no device {device_id}")
    return row


def latest_reports(session: Session, device_id: str) -> list[InstallReport]:
    """The device's latest install reports (at most ``REPORTS_SHOWN``), newest first."""
    return list(
        session.scalars(
            select(InstallReport)
            .where(InstallReport.device_id == device_id)
            .order_by(InstallReport.received_at.desc())
            .limit(REPORTS_SHOWN)
        )
    )


def explain_device(
    row: Device, catalog: Catalog, day: date, known_on: date | None = None
) -> dict[str, Any]:
    """What the device would be offered on ``day`` and why, rule by rule: the rules as
    they stood on ``day``, as known now or (``known_on``) as known at the end of that day.
    As the director decides: builds that failed on the device and releases its rollouts
    hold back from it (today's rollouts, whatever the day) are left out, and the answer
    names them. A device that never checked in is assumed ready (on wifi, charged, with
    room), and the answer says so."""
    seen = row.last_seen_at is not None
    facts = DeviceFacts(
        device_id=row.id,
        model=row.model,
        region=row.region,
        deployed_on=row.deployed_on,
        build=row.build,
        build_sha256=row.build_sha256 or "0" * 64,
        security_patch_level=row.security_patch_level,
        free_bytes=row.free_bytes if seen and row.free_bytes is not None else 2**62,
        battery_percent=row.battery_percent if seen and row.battery_percent is not None else 100,
        network=(row.network or "offline") if seen else "wifi",
    )
    rules, amendments = catalog.known_on(known_on)
    failed = failure_sentences(row.failed_builds)
    releases = [r for r in catalog.releases_of(row.model) if r.build not in failed]

    def choose(held: frozenset[str]) -> Decision:
        kept = (r for r in releases if r.target_path not in held)
        return decide(facts, kept, rules, amendments, day)

    subject = Subject(
        row.id, row.region, row.carrier, row.deployed_on, row.build, row.security_patch_level
    )
    _, gated = apply_rollouts(
        subject, row.model, catalog.rollouts, releases, choose, lambda d: d.release
    )
    kept = [r for r in releases if r.target_path not in gated.held]
    result = explain(facts, kept, rules, amendments, day).to_json()
    result["known_on"] = known_on.isoformat() if known_on is not None else None
    result["amendments_recorded_later"] = [
        a.to_json() for a in catalog.amendments if a not in amendments
    ]
    result["phone_state"] = "last check-in" if seen else "unknown (assumed ready)"
    result["as_of_last_check_in"] = row.last_seen_at
    result["rollouts"] = list(gated.notes)
    result["held_back_by_rollouts"] = sorted(gated.held)
    result["failed_builds"] = [failed[b] for b in sorted(failed, key=build_sort_key)]
    return result
