"""Rollouts: every rollout with its state and phase; one rollout with its phases, the
cohort's figures against the brakes, its history, pending proposals that concern it, and
the buttons a release manager may press (they post to ``actions``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from patchline.actions import Action
from patchline.approvals import service as approvals
from patchline.director.rollout_gate import ACTIVE, HALTED, PAUSED, percent
from patchline.fleet import rollouts
from patchline.server.api.deps import Rt, in_session
from patchline.server.console.access import Reader
from patchline.server.console.render import page
from patchline.store.models import Proposal, Rollout, RolloutEvent

router = APIRouter()

#: Which buttons a rollout in each state shows (the service checks again).
BUTTONS: dict[str, tuple[str, ...]] = {
    ACTIVE: ("pause", "advance", "abort"),
    PAUSED: ("resume", "advance", "abort"),
    HALTED: ("resume", "abort"),
}
_ROLLOUT_ACTIONS = (Action.ROLLOUT_START.value, Action.ROLLOUT_WIDEN.value)


@dataclass(frozen=True)
class RolloutView:
    """One rollout as its page shows it."""

    row: Rollout
    history: list[RolloutEvent]
    figures: rollouts.Figures
    brakes: rollouts.Brakes
    proposals: list[Proposal]


def pending_rollout_proposals(session: Session, rollout_id: str | None = None) -> list[Proposal]:
    """Pending proposals to start or widen a rollout (of ``rollout_id`` only, if given)."""
    return [
        p
        for p in approvals.list_proposals(session, "pending")
        if p.action in _ROLLOUT_ACTIONS
        and (rollout_id is None or p.payload.get("rollout_id") == rollout_id)
    ]


def phase_rows(row: Rollout) -> list[dict[str, Any]]:
    """The rollout's phases with their share in words and whether each is done, current
    or to come."""
    return [
        {
            "number": i + 1,
            "share": percent(int(p["share"])),
            "soak_hours": round(int(p.get("soak_seconds", 0)) / 3600, 1),
            "min_healthy": p.get("min_healthy", 0),
            "where": "done" if i < row.phase else "current" if i == row.phase else "to come",
        }
        for i, p in enumerate(row.phases)
    ]


@router.get("/rollouts", include_in_schema=False)
async def rollouts_page(request: Request, rt: Rt, seen: Reader) -> Response:
    """Every rollout, newest first, and the rollout proposals waiting for a second
    person."""

    def load(session: Session) -> tuple[list[Rollout], list[Proposal]]:
        return rollouts.list_rollouts(session), pending_rollout_proposals(session)

    rows, proposals = await in_session(rt, load)
    return page(
        request,
        seen,
        "rollouts.html",
        title="Rollouts",
        rollouts=rows,
        proposals=proposals,
        percent=percent,
        done=request.query_params.get("done", ""),
    )


@router.get("/rollouts/{rollout_id}", include_in_schema=False)
async def rollout_page(request: Request, rt: Rt, rollout_id: str, seen: Reader) -> Response:
    """One rollout: phases, figures against the brakes, history, buttons."""
    now = rt.clock.now()

    def load(session: Session) -> RolloutView:
        row = rollouts.get_rollout(session, rollout_id)
        return RolloutView(
            row,
            rollouts.history(session, row.id),
            rollouts.cohort_figures(session, row, now),
            rollouts.brakes_of(row),
            pending_rollout_proposals(session, row.id),
        )

    view = await in_session(rt, load)
    f, b = view.figures, view.brakes
    gauges = [
        ("failure", f.failed, f.rate(f.failed), b.max_failure_rate),
        ("rollback", f.rolled_back, f.rate(f.rolled_back), b.max_rollback_rate),
        ("silence", f.silent, f.rate(f.silent), b.max_silence_rate),
    ]
    return page(
        request,
        seen,
        "rollout.html",
        title=f"Rollout {view.row.id}",
        view=view,
        phases=phase_rows(view.row),
        gauges=gauges,
        buttons=BUTTONS.get(view.row.state, ()),
        done=request.query_params.get("done", ""),
    )
