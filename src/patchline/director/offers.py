"""The releases the director knows, and how each is offered: its battery floor and the
networks it may be downloaded over."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from patchline.audit import AuditRecord, append
from patchline.director.releases_sync import bump_catalog
from patchline.errors import NotFoundError
from patchline.store.models import Release
from patchline.wire.device_api import Network


def list_releases(session: Session, model: str | None = None) -> list[Release]:
    """Every signed target (full images and deltas, yanked ones too), newest first;
    with ``model``, only that model's."""
    stmt = select(Release).order_by(Release.id.desc())
    if model:
        stmt = stmt.where(Release.model == model)
    return list(session.scalars(stmt))


def get_release(session: Session, release_id: int) -> Release:
    """The release ``release_id``; NotFoundError when there is none."""
    row = session.get(Release, release_id)
    if row is None:
        raise NotFoundError(f"no release {release_id}")
    return row


def change_offer(
    session: Session,
    release_id: int,
    *,
    min_battery_percent: int | None,
    allowed_networks: Sequence[Network] | None,
    actor: str,
    now: datetime,
) -> Release:
    """Set the settings given (``None``: unchanged), record the change in the audit chain
    and bump the catalog version so every process offers it so. Raises NotFoundError for
    no such release."""
    row = get_release(session, release_id)
    changed: dict[str, object] = {}
    if min_battery_percent is not None:
        row.min_battery_percent = min_battery_percent
        changed["min_battery_percent"] = min_battery_percent
    if allowed_networks is not None:
        row.allowed_networks = [n.value for n in allowed_networks]
        changed["allowed_networks"] = row.allowed_networks
    bump_catalog(session)
    append(session, [AuditRecord(now, "release-settings", actor, row.target_path, changed)])
    return row
