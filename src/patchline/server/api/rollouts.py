"""``/api/rollouts``: staged rollouts of a release, in phases, with brakes that halt them
by themselves. Release managers start, pause, resume, abort and advance; anyone who may
read sees them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from patchline.errors import UsageError
from patchline.fleet import rollouts
from patchline.server.api.deps import Reader, ReleaseManager, Rt, actor, in_session, in_thread
from patchline.server.api.rollout_models import (
    ActionBody,
    CohortOut,
    RolloutBody,
    RolloutOut,
)

router = APIRouter(prefix="/api", tags=["rollouts"])


@router.get("/rollouts")
async def list_rollouts(rt: Rt, _caller: Reader) -> list[RolloutOut]:
    """Every rollout, newest first, with the figures of its last change."""
    return await in_session(rt, lambda s: [RolloutOut.of(r) for r in rollouts.list_rollouts(s)])


@router.post("/rollouts", status_code=201)
async def create_rollout(rt: Rt, body: RolloutBody, caller: ReleaseManager) -> RolloutOut:
    """Start a rollout in its first phase; 404 for no such release, 409 when the release
    has an open rollout, 422 for phases that do not grow to 100 %."""
    spec = body.spec()
    now = rt.clock.now()

    def create(session: Session) -> RolloutOut:
        row = rollouts.create_rollout(session, spec, actor(caller), now)
        return RolloutOut.of(row, rollouts.history(session, row.id))

    result = await in_session(rt, create)
    await in_thread(rt.reload_catalog_if_changed)
    return result


@router.get("/rollouts/{rollout_id}")
async def show_rollout(rt: Rt, rollout_id: str, _caller: Reader) -> RolloutOut:
    """One rollout with its history and its cohort's figures now."""
    now = rt.clock.now()

    def show(session: Session) -> RolloutOut:
        row = rollouts.get_rollout(session, rollout_id)
        figures = rollouts.cohort_figures(session, row, now).to_json()
        return RolloutOut.of(row, rollouts.history(session, row.id), figures)

    return await in_session(rt, show)


@router.get("/rollouts/{rollout_id}/cohort")
async def rollout_cohort(
    rt: Rt,
    rollout_id: str,
    _caller: Reader,
    phase: Annotated[int | None, Query(ge=1, description="1-based; default the current.")] = None,
) -> CohortOut:
    """The ids of the enrolled devices a phase reaches (selection by region, deployment
    date and id list; a device's build and patch level are checked at check-in)."""

    def cohort(session: Session) -> CohortOut:
        row = rollouts.get_rollout(session, rollout_id)
        index = row.phase if phase is None else phase - 1
        if index >= len(row.phases):
            raise UsageError(f"rollout {row.id} has {len(row.phases)} phases")
        ids = rollouts.cohort_ids(session, row, index)
        return CohortOut(
            rollout=row.id, phase=index + 1, share=int(row.phases[index]["share"]), device_ids=ids
        )

    return await in_session(rt, cohort)


@router.post("/rollouts/{rollout_id}/{action}")
async def act_on_rollout(
    rt: Rt,
    rollout_id: str,
    action: Literal["pause", "resume", "abort", "advance"],
    caller: ReleaseManager,
    body: ActionBody | None = None,
) -> RolloutOut:
    """Pause, resume (also a halted one), abort, or advance to the next phase (past the
    last: completed); 409 when the rollout's state does not allow it."""
    now = rt.clock.now()
    reason = body.reason if body is not None else ""

    def run(session: Session) -> RolloutOut:
        row = rollouts.act(session, rollout_id, action, actor(caller), reason, now)
        return RolloutOut.of(row, rollouts.history(session, row.id))

    result = await in_session(rt, run)
    await in_thread(rt.reload_catalog_if_changed)
    return result
