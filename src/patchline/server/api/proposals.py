"""``/api/proposals``: changes held for a second person (the two-person rule), approved
or rejected by another token allowed to make them (docs/two-person-rule.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path as PathParam
from fastapi import Query
from sqlalchemy.orm import Session

from patchline.actions import Action
from patchline.approvals import service
from patchline.approvals.appliers import APPLIERS
from patchline.repository.publisher import Repository
from patchline.server.api.bodies import DecisionBody
from patchline.server.api.deps import Caller, Reader, Rt, actor, in_session, in_thread
from patchline.server.api.documented_errors import api_router
from patchline.server.api.releases import discard_staged
from patchline.server.api.schemas import ProposalOut
from patchline.server.api.two_person import check_may
from patchline.server.runtime import Runtime

router = api_router(tags=["proposals"])
ProposalId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]


@router.get("/proposals")
async def list_proposals(
    rt: Rt,
    _caller: Reader,
    state: Annotated[Literal["pending", "approved", "rejected"] | None, Query()] = None,
) -> list[ProposalOut]:
    """Proposals, newest first; with ``state``, only those."""
    return await in_session(
        rt,
        lambda s: [
            ProposalOut(**service.proposal_json(p)) for p in service.list_proposals(s, state)
        ],
    )


@router.get("/proposals/{proposal_id:int}")
async def get_proposal(rt: Rt, proposal_id: ProposalId, _caller: Reader) -> ProposalOut:
    """One proposal; 404 when there is none."""
    return await in_session(
        rt, lambda s: ProposalOut(**service.proposal_json(service.get_proposal(s, proposal_id)))
    )


@router.post("/proposals/{proposal_id:int}/approve")
async def approve_proposal(rt: Rt, proposal_id: ProposalId, caller: Reader) -> ProposalOut:
    """Apply a pending proposal as the caller, a second person: 403 for its proposer or a
    role that may not make the change, 409 when it is no longer pending, and the error the
    direct path would give (nothing applied, still pending) when the change is refused."""
    return await approve_as(rt, caller, proposal_id)


async def approve_as(rt: Runtime, caller: Caller, proposal_id: int) -> ProposalOut:
    """Approve and apply a pending proposal as ``caller`` (the API endpoint's and the
    console's one path): HTTP 403 when the role may not make the change, the service's
    errors when the caller proposed it, it is no longer pending, or the change is
    refused."""
    now = rt.clock.now()

    def open_repository() -> Repository:
        return Repository.open(rt.settings.home, rt.settings, clock=rt.clock)

    def approve(session: Session) -> ProposalOut:
        check_may(caller, Action(service.get_proposal(session, proposal_id).action))
        row = service.approve(session, proposal_id, actor(caller), now, APPLIERS, open_repository)
        return ProposalOut(**service.proposal_json(row))

    result = await in_session(rt, approve)
    if result.action == Action.RELEASE_PUBLISH_UNDER_RULES:
        discard_staged(rt.settings.home, result.payload)
        await in_thread(rt.sync_releases)
    await in_thread(rt.reload_catalog_if_changed)
    return result


@router.post("/proposals/{proposal_id:int}/reject")
async def reject_proposal(
    rt: Rt, proposal_id: ProposalId, caller: Reader, body: DecisionBody | None = None
) -> ProposalOut:
    """Close a pending proposal unapplied: by a role that may make the change, or by its
    proposer (withdrawing it); 409 when it is no longer pending."""
    now = rt.clock.now()
    reason = body.reason if body else ""

    def reject(session: Session) -> ProposalOut:
        row = service.get_proposal(session, proposal_id)
        if row.proposed_by != actor(caller):
            check_may(caller, Action(row.action))
        row = service.reject(session, proposal_id, actor(caller), reason, now)
        return ProposalOut(**service.proposal_json(row))

    result = await in_session(rt, reject)
    discard_staged(rt.settings.home, result.payload)
    return result
