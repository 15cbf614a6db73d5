"""Compliance: every rule on a timeline with its amendments and lapses, what the rules
say on a chosen date (as known now or on another day), and the audit chain's state
with a button that verifies it and a signed export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from patchline.audit.chain import read_head
from patchline.director.catalog import Catalog
from patchline.fleet.deliveries import (
    ReceiptDeliveries,
    RuleDeliveries,
    deliveries_by_rule,
    receipts_by_release,
)
from patchline.policy.rules import Rule, rule_history, rule_on, status_sentence
from patchline.server.api.bodies import IsoDate
from patchline.server.api.deps import Rt, in_session
from patchline.server.console.access import Reader
from patchline.server.console.render import page

router = APIRouter()


@dataclass(frozen=True)
class Segment:
    """A stretch of a timeline, as percentages of its width."""

    left: float
    width: float
    title: str


@dataclass(frozen=True)
class TimelineRow:
    """One rule on the timeline: where it is in force (one segment per version), where
    its amendments take effect, and what it says on the chosen date."""

    rule: Rule
    segments: list[Segment]
    marks: list[Segment]
    on_day: str
    reads: str


def _window(rule: Rule, start: date, end: date) -> tuple[date, date] | None:
    """The part of [start, end) in which ``rule`` (one version) is in force."""
    low = max(start, rule.valid_from or start)
    high = min(end, rule.valid_until or end)
    return (low, high) if low < high else None


def timeline(catalog: Catalog, day: date, known_on: date | None) -> dict[str, Any]:
    """Every rule's versions laid out between the earliest and latest date any rule or
    amendment names (and ``day``), with what each rule says on ``day``."""
    rules, amendments = catalog.known_on(known_on)
    dates = {day}
    for rule in rules:
        for version in rule_history(rule, amendments):
            dates.update(d for d in (version.rule.valid_from, version.rule.valid_until) if d)
            if version.effective_from:
                dates.add(version.effective_from)
    first, last = min(dates) - timedelta(days=7), max(dates) + timedelta(days=7)
    span = (last - first).days or 1

    def at(d: date) -> float:
        return round((d - first).days * 100 / span, 2)

    rows = []
    for rule in sorted(rules, key=lambda r: r.id):
        versions = rule_history(rule, amendments)
        segments, marks = [], []
        for i, version in enumerate(versions):
            start = version.effective_from or first
            end = versions[i + 1].effective_from if i + 1 < len(versions) else last
            window = _window(version.rule, start, end or last)
            if window is not None:
                label = "as first written" if version.amendment is None else version.amendment.label
                segments.append(
                    Segment(
                        at(window[0]),
                        at(window[1]) - at(window[0]),
                        f"{window[0]} to {window[1]}: {label}",
                    )
                )
            amendment = version.amendment
            if amendment is not None:
                marks.append(Segment(at(amendment.effective_from), 0, amendment.label))
        on_day = rule_on(rule, amendments, day)
        rows.append(
            TimelineRow(
                rule, segments, marks, status_sentence(on_day, amendments, day), on_day.describe()
            )
        )
    ticks = [first + timedelta(days=round(span * i / 4)) for i in range(5)]
    return {
        "rows": rows,
        "ticks": [(at(t), t.isoformat()) for t in ticks],
        "day_at": at(day),
        "first": first,
        "last": last,
    }


@dataclass(frozen=True)
class Deliveries:
    """What the rules delivered online, and the installs learnt from receipts."""

    by_rule: list[RuleDeliveries]
    receipts: list[ReceiptDeliveries]


def deliveries(session: Session) -> Deliveries:
    """Deliveries per rule and receipts per release, counted by the database."""
    return Deliveries(deliveries_by_rule(session), receipts_by_release(session))


@router.get("/compliance", include_in_schema=False)
async def compliance_page(
    request: Request,
    rt: Rt,
    seen: Reader,
    day: IsoDate | None = None,
    known_on: IsoDate | None = None,
) -> Response:
    """The rules on a timeline, a what-if for ``day`` (default today), the audit head."""
    chosen = day or rt.clock.now().date()
    head = await in_session(rt, read_head)
    delivered = await in_session(rt, deliveries)
    return page(
        request,
        seen,
        "compliance.html",
        title="Compliance",
        timeline=timeline(rt.director.catalog, chosen, known_on),
        day=chosen,
        known_on=known_on,
        head=head,
        deliveries=delivered,
        verification=None,
    )
