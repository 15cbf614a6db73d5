"""``/api/policies``: the delivery rules, as first written and amended over time (what a
device would get under them is ``/api/devices/{id}/explain``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import JSONResponse

from patchline.actions import Action
from patchline.approvals.appliers import amendment_payload, rule_create_payload
from patchline.director import rules_service
from patchline.policy.rules import Amendment, Rule
from patchline.server.api.bodies import AmendmentBody, IsoDate, RuleBody
from patchline.server.api.deps import Compliance, Reader, Rt, actor, in_session, in_thread
from patchline.server.api.documented_errors import api_router
from patchline.server.api.schemas import ProposalOut, RuleOut
from patchline.server.api.two_person import hold_if_required

router = api_router(tags=["rules"])
HELD: dict[int | str, dict[str, Any]] = {
    202: {"model": ProposalOut, "description": "Held for a second person's approval."}
}


@router.get("/policies")
async def list_policies(
    rt: Rt,
    _caller: Reader,
    known_on: Annotated[
        IsoDate | None,
        Query(description="Only rules and amendments recorded by the end of this day."),
    ] = None,
) -> list[RuleOut]:
    """Every rule as first written, with its amendments in order, each with both of its
    times (effective, recorded) and whether it is back-dated; with ``known_on``, as they
    were known at the end of that day."""
    return await in_session(
        rt, lambda s: [RuleOut.of(r) for r in rules_service.list_rules(s, known_on)]
    )


@router.post("/policies", status_code=201, responses=HELD, response_model=RuleOut)
async def create_policy(rt: Rt, body: RuleBody, caller: Compliance) -> RuleOut | JSONResponse:
    """Write a new rule (see docs/policy.md for its fields); 409 when its id is taken;
    202 with a proposal when ``rule.create`` needs a second person."""
    rule = Rule.from_json(body.given())
    held = await hold_if_required(
        rt,
        caller,
        Action.RULE_CREATE,
        rule_create_payload(rule, caller[0]),
        f"create rule {rule.id}",
    )
    if held is not None:
        return held
    now = rt.clock.now()
    result = await in_session(
        rt, lambda s: RuleOut.of(rules_service.create_rule(s, rule, caller[0], actor(caller), now))
    )
    await in_thread(rt.reload_catalog_if_changed)
    return result


@router.post(
    "/policies/{policy_id}/amendments", status_code=201, responses=HELD, response_model=RuleOut
)
async def amend_policy(
    rt: Rt, policy_id: str, body: AmendmentBody, caller: Compliance
) -> RuleOut | JSONResponse:
    """Amend a rule from ``effective_from`` on; the rule's history is kept. One effective
    before today is back-dated: 422 unless it says ``backdated: true`` with a ``reason``.
    202 with a proposal when ``rule.amend`` needs a second person."""
    now = rt.clock.now()
    amendment = Amendment(
        rule_id=policy_id,
        effective_from=body.effective_from,
        changes=body.changes.given(),
        note=body.note,
        recorded_at=now,
        backdated=body.backdated,
        reason=body.reason,
    )
    held = await hold_if_required(
        rt,
        caller,
        Action.RULE_AMEND,
        amendment_payload(amendment, caller[0]),
        f"amend rule {policy_id} from {body.effective_from.isoformat()}",
    )
    if held is not None:
        return held
    result = await in_session(
        rt,
        lambda s: RuleOut.of(rules_service.amend_rule(s, amendment, caller[0], actor(caller), now)),
    )
    await in_thread(rt.reload_catalog_if_changed)
    return result
