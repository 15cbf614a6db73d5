"""The support a maker promised per model (security updates until a date), and the
devices it leaves behind: past their model's promise, or on a patch older than an age.
Counted by the database; a device is "reachable" when it checked in lately."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from patchline.audit import AuditRecord, append
from patchline.errors import UsageError
from patchline.fleet.overview import FleetCell, fleet_cells
from patchline.store.models import SupportPromise


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
    return summarise(fleet_cells(session, seen_since), list_promises(session), today, patch_before)


def summarise(
    cells: Iterable[FleetCell],
    promises: Iterable[SupportPromise],
    today: date,
    patch_before: date,
) -> list[ModelSupport]:
    """``support_by_model`` from the fleet's cells (``patchline.fleet.overview``) and the
    promises."""
    kept = {p.model: p for p in promises}
    sums: dict[str, list[int]] = {}
    for c in cells:
        n = sums.setdefault(c.model, [0, 0, 0, 0, 0])
        promise = kept.get(c.model)
        past = promise is not None and promise.security_until < today
        stale = c.patch_level < patch_before
        n[0] += c.devices
        n[1] += c.devices if past else 0
        n[2] += c.reachable if past else 0
        n[3] += c.devices if stale else 0
        n[4] += c.reachable if stale else 0
    result = []
    for model in sorted(set(sums) | set(kept)):
        promise = kept.get(model)
        result.append(
            ModelSupport(
                model,
                promise.security_until if promise else None,
                promise.note if promise else "",
                *sums.get(model, [0, 0, 0, 0, 0]),
            )
        )
    return result
