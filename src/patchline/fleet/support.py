"""The support a maker promised per model (security updates until a date), and the
devices it leaves behind: past their model's promise, or on a patch older than an age.
Counted by the database; a device is "reachable" when it checked in lately."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from patchline.audit import AuditRecord, append
from patchline.errors import UsageError
from patchline.store.models import Device, SupportPromise


@dataclass(frozen=True)
class ModelSupport:
    """One model: its promise (None: none set), its devices in service, how many of them
    are past the promise or on a patch older than the cut-off, and how many of each were
    heard from since the reachability cut-off."""

    model: str
    security_until: date | None
    note: str
    devices: int
    past_support: int
    past_support_reachable: int
    stale_patch: int
    stale_patch_reachable: int


def set_promise(
    session: Session, model: str, until: date, note: str, actor: str, now: datetime
) -> SupportPromise:
    """Record that ``model`` gets security updates until ``until`` (replacing an earlier
    promise), in the audit chain. UsageError for an empty model name."""
    if not model.strip():
        raise UsageError("a support promise needs a model name")
    row = session.get(SupportPromise, model)
    before = row.security_until.isoformat() if row is not None else None
    if row is None:
        row = SupportPromise(model=model, security_until=until, note=note, set_at=now, set_by=actor)
        session.add(row)
    else:
        row.security_until, row.note, row.set_at, row.set_by = until, note, now, actor
    payload = {"security_until": until.isoformat(), "before": before, "note": note}
    append(session, [AuditRecord(now, "support-promise", actor, model, payload)])
    return row


def list_promises(session: Session) -> list[SupportPromise]:
    """Every model's promise, by model."""
    return list(session.scalars(select(SupportPromise).order_by(SupportPromise.model)))


def support_by_model(
    session: Session, today: date, patch_before: date, seen_since: datetime
) -> list[ModelSupport]:
    """Per model with devices in service or a promise: the promise, how many devices are
    past it on ``today``, how many run a security patch older than ``patch_before``, and of
    each how many checked in since ``seen_since``."""
    past = SupportPromise.security_until < today
    stale = Device.security_patch_level < patch_before
    seen = Device.last_seen_at >= seen_since

    def total(condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.sum(case((condition, 1), else_=0))

    query = (
        select(
            Device.model,
            func.count(),
            total(past),
            total(past & seen),
            total(stale),
            total(stale & seen),
        )
        .outerjoin(SupportPromise, SupportPromise.model == Device.model)
        .where(Device.decommissioned_at.is_(None))
        .group_by(Device.model)
    )
    counts = {row[0]: [int(v or 0) for v in row[1:]] for row in session.execute(query)}
    promises = {p.model: p for p in list_promises(session)}
    result = []
    for model in sorted(set(counts) | set(promises)):
        n, p, pr, s, sr = counts.get(model, [0, 0, 0, 0, 0])
        promise = promises.get(model)
        result.append(
            ModelSupport(
                model,
                promise.security_until if promise else None,
                promise.note if promise else "",
                n,
                p,
                pr,
                s,
                sr,
            )
        )
    return result
