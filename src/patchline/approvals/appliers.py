"""What applying each approved action means: the same service call the direct path makes,
with the approval recorded. Staged rollouts add their actions here."""

from __future__ import annotations

from datetime import date
from typing import Any

from patchline.approvals.actions import Action
from patchline.approvals.service import Applier, Approved
from patchline.director import rules_service
from patchline.policy.rules import Amendment, Rule


def rule_create_payload(rule: Rule, author: str) -> dict[str, Any]:
    """The proposal payload of a new rule by ``author``."""
    return {"author": author, "rule": rule.to_json()}


def amendment_payload(amendment: Amendment, author: str) -> dict[str, Any]:
    """The proposal payload of an amendment by ``author`` (recorded when approved)."""
    return {
        "author": author,
        "rule_id": amendment.rule_id,
        "effective_from": amendment.effective_from.isoformat(),
        "changes": dict(amendment.changes),
        "note": amendment.note,
        "backdated": amendment.backdated,
        "reason": amendment.reason,
    }


def _create_rule(approved: Approved) -> dict[str, Any]:
    rule = Rule.from_json(approved.payload["rule"])
    rules_service.create_rule(
        approved.session,
        rule,
        approved.author,
        approved.approved_by,
        approved.now,
        approval=approved.approval(),
    )
    return {"rule_id": rule.id}


def _amend_rule(approved: Approved) -> dict[str, Any]:
    p = approved.payload
    amendment = Amendment(
        rule_id=p["rule_id"],
        effective_from=date.fromisoformat(p["effective_from"]),
        changes=p["changes"],
        note=p["note"],
        recorded_at=approved.now,
        backdated=p["backdated"],
        reason=p["reason"],
    )
    stored = rules_service.amend_rule(
        approved.session,
        amendment,
        approved.author,
        approved.approved_by,
        approved.now,
        approval=approved.approval(),
    )
    return {"rule_id": amendment.rule_id, "amendment": stored.amendments[-1].row.id}


#: The applier of every action a proposal can carry (in the database's transaction).
APPLIERS: dict[Action, Applier] = {
    Action.RULE_CREATE: _create_rule,
    Action.RULE_AMEND: _amend_rule,
}
