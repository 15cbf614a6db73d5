"""What one server process remembers about each device it has seen."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from patchline.store.db import Database
from patchline.store.models import Device


@dataclass
class DeviceEntry:
    """Identity (immutable but for the credential) and what this process last wrote."""

    device_id: str
    credential_hash: bytes
    model: str
    region: str
    deployed_on: date
    written_facts: dict[str, Any] = field(default_factory=dict)
    written_seen_at: datetime | None = None
    decision_digest: str | None = None


def load_device(db: Database, device_id: str) -> DeviceEntry | None:
    """Read one device's identity from the database (None when unknown)."""
    table = Device.__table__
    query = select(
        table.c.id,
        table.c.credential_hash,
        table.c.model,
        table.c.region,
        table.c.deployed_on,
        table.c.last_decision,
    ).where(table.c.id == device_id)
    with db.engine.connect() as conn:
        row = conn.execute(query).first()
        conn.rollback()
    if row is None:
        return None
    return DeviceEntry(
        device_id=row.id,
        credential_hash=bytes(row.credential_hash),
        model=row.model,
        region=row.region,
        deployed_on=row.deployed_on,
        decision_digest=row.last_decision,
    )
