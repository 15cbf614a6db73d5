"""A device's decisions over time: what the director offered it at each check-in whose
answer changed, and why, newest first, a page at a time.

Read from the audit chain: the writer records a ``decision`` entry whenever a device's
decision differs from its last one (an unchanged answer is not recorded again), with
the action, the build, the build it ran, the reasons, the rules that had a say and the
rule that allowed the offer (entries written before that field existed have none).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from patchline.director.catalog import aware
from patchline.store.models import AuditEntry

#: The audit kind of a decision entry.
DECISION_KIND = "decision"


@dataclass(frozen=True)
class DecisionEntry:
    """One recorded decision."""

    seq: int
    at: datetime  # aware, UTC
    action: str
    build: str | None
    running: str | None
    reasons: list[str]
    rules: list[str]
    allowed_by: str | None


@dataclass(frozen=True)
class DecisionPage:
    """A page of a device's decisions, newest first, and whether older ones follow."""

    entries: list[DecisionEntry] = field(default_factory=list)
    page: int = 1
    more: bool = False


def _entry(row: AuditEntry) -> DecisionEntry:
    payload: dict[str, Any] = json.loads(row.payload)
    return DecisionEntry(
        seq=row.seq,
        at=aware(row.at),
        action=str(payload.get("action", "")),
        build=payload.get("build"),
        running=payload.get("running"),
        reasons=[str(r) for r in payload.get("reasons", [])],
        rules=[str(r) for r in payload.get("rules", [])],
        allowed_by=payload.get("allowed_by"),
    )


def device_decisions(
    session: Session, device_id: str, page: int = 1, per_page: int = 20
) -> DecisionPage:
    """Page ``page`` (from 1) of the device's recorded decisions, ``per_page`` each,
    newest first; read through the audit chain's (subject, seq) index."""
    query = (
        select(AuditEntry)
        .where(AuditEntry.subject == device_id, AuditEntry.kind == DECISION_KIND)
        .order_by(AuditEntry.seq.desc())
        .offset((page - 1) * per_page)
        .limit(per_page + 1)
    )
    rows = list(session.scalars(query))
    return DecisionPage([_entry(r) for r in rows[:per_page]], page, len(rows) > per_page)
