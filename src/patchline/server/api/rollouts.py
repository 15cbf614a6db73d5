"""``/api/rollouts``: staged rollouts of a release, in phases, with brakes that halt them
by themselves. Release managers start, pause, resume, abort and advance; anyone who may
read sees them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.convertors import Convertor, register_url_convertor

from patchline.actions import Action
from patchline.approvals.appliers import rollout_start_payload, rollout_widen_payload
from patchline.errors import UsageError
from patchline.fleet import rollouts
from patchline.fleet.rollouts import RolloutSpec
from patchline.server.api.deps import (
    Caller,
    Reader,
    ReleaseManager,
    Rt,
    actor,
    in_session,
    in_thread,
)
from patchline.server.api.documented_errors import api_router
from patchline.server.api.rollout_models import (
    ActionBody,
    CohortOut,
    RolloutBody,
    RolloutOut,
)
from patchline.server.api.schemas import ProposalOut
from patchline.server.api.two_person import hold_if_required
from patchline.server.runtime import Runtime

router = api_router(tags=["rollouts"])


class _Action(Convertor[str]):
    """The actions on a rollout, as a path segment: any other segment is not this
    operation's path (``POST /api/rollouts/R-1/cohort`` is 405, not 422)."""

    regex = "pause|resume|abort|advance"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("rollout_action", _Action())
HELD: dict[int | str, dict[str, Any]] = {
    202: {"model": ProposalOut, "description": "Held for a second person's approval."}
}


@router.get("/rollouts")
async def list_rollouts(rt: Rt, _caller: Reader) -> list[RolloutOut]:
    """Every rollout, newest first, with the figures of its last change."""
    return await in_session(rt, lambda s: [RolloutOut.of(r) for r in rollouts.list_rollouts(s)])


@router.post("/rollouts", status_code=201, responses=HELD, response_model=RolloutOut)
async def create_rollout(
    rt: Rt, body: RolloutBody, caller: ReleaseManager
) -> RolloutOut | JSONResponse:
    """Start a rollout in its first phase; 404 for no such release, 409 when the release
    has an open rollout, 422 for phases that do not grow to 100 %; 202 with a proposal
    when ``rollout.start`` needs a second person."""
    return await start_rollout(rt, caller, body.spec())


async def start_rollout(
    rt: Runtime, caller: Caller, spec: RolloutSpec
) -> RolloutOut | JSONResponse:
    """Start a rollout as ``caller`` (who must be allowed to manage releases): what the
    API endpoint and the console both do. Held for a second person (202 with the
    proposal) when ``rollout.start`` needs one; audited, with its webhook, else."""
    held = await hold_if_required(
        rt,
        caller,
        Action.ROLLOUT_START,
        rollout_start_payload(spec),
        f"start a rollout of {spec.model} {spec.build}",
    )
    if held is not None:
        return held
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


@router.post(
    "/rollouts/{rollout_id}/{action:rollout_action}", responses=HELD, response_model=RolloutOut
)
async def act_on_rollout(
    rt: Rt,
    rollout_id: str,
    action: Literal["pause", "resume", "abort", "advance"],
    caller: ReleaseManager,
    body: ActionBody | None = None,
) -> RolloutOut | JSONResponse:
    """Pause, resume (also a halted one), abort, or advance to the next phase (past the
    last: completed); 409 when the rollout's state does not allow it; 202 with a proposal
    when advancing and ``rollout.widen`` needs a second person."""
    reason = body.reason if body is not None else ""
    return await rollout_action(rt, caller, rollout_id, action, reason)


async def rollout_action(
    rt: Runtime, caller: Caller, rollout_id: str, action: str, reason: str
) -> RolloutOut | JSONResponse:
    """Pause, resume, abort or advance a rollout as ``caller`` (who must be allowed to
    manage releases): what the API endpoint and the console both do. Advancing is held
    for a second person (202 with the proposal) when the settings say so."""
    if action == "advance":
        held = await hold_if_required(
            rt,
            caller,
            Action.ROLLOUT_WIDEN,
            rollout_widen_payload(rollout_id, reason),
            f"widen rollout {rollout_id} to its next phase",
        )
        if held is not None:
            return held
    now = rt.clock.now()

    def run(session: Session) -> RolloutOut:
        row = rollouts.act(session, rollout_id, action, actor(caller), reason, now)
        return RolloutOut.of(row, rollouts.history(session, row.id))

    result = await in_session(rt, run)
    await in_thread(rt.reload_catalog_if_changed)
    return result
