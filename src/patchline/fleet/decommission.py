"""Taking a device out of service: its credential stops working, it is offered nothing,
and its records stay (the device row, its reports, the audit chain)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from patchline.audit import AuditRecord, append
from patchline.director.releases_sync import bump_catalog
from patchline.errors import AlreadyWithdrawnError, NotFoundError
from patchline.store.models import Device


def decommission(
    session: Session, device_id: str, reason: str, actor: str, now: datetime
) -> Device:
    """Mark the device decommissioned with ``reason``, record it in the audit chain and
    tell every server process (through the catalog version) to refuse its credential.

    Raises NotFoundError for an unknown device, AlreadyWithdrawnError when it already is.
    """
    row = session.get(Device, device_id)
    if row is None:
        raise NotFoundError(f"no device {device_id}")
    if row.decommissioned_at is not None:
        raise AlreadyWithdrawnError(
            f"device {device_id} was decommissioned on {row.decommissioned_at.isoformat()}"
        )
    row.decommissioned_at = now
    row.decommission_reason = reason
    append(
        session,
        [
            AuditRecord(
                now,
                "decommission",
                actor,
                device_id,
                {"model": row.model, "serial": row.serial, "build": row.build, "reason": reason},
            )
        ],
    )
    bump_catalog(session)
    return row


def decommissioned_ids(session: Session) -> frozenset[str]:
    """The ids of every decommissioned device."""
    return frozenset(
        session.scalars(select(Device.id).where(Device.decommissioned_at.is_not(None)))
    )
