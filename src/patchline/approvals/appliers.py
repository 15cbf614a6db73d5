"""What applying each approved action means: the same service call the direct path makes,
with the approval recorded. Staged rollouts add their actions here."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from patchline.actions import Action
from patchline.approvals.service import Applier, Approved
from patchline.audit import AuditRecord, append
from patchline.director import rules_service
from patchline.director.publishing import delivery_rules, publish, under_rules
from patchline.errors import UsageError
from patchline.fleet import rollouts
from patchline.policy.rules import Amendment, Rule
from patchline.repository.releases import ReleaseRequest
from patchline.wire.release import Eligibility, UpdateClass


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


def publish_payload(request: ReleaseRequest, author: str) -> dict[str, Any]:
    """The proposal payload of a release to publish under the rules; ``request.image`` is
    a file kept until the proposal is decided."""
    return {
        "author": author,
        "image": str(request.image),
        "model": request.model,
        "build": request.build,
        "security_patch_level": request.security_patch_level.isoformat(),
        "update_class": request.update_class.value,
        "eligibility": request.eligibility.to_json(),
        "notes": request.notes,
    }


def _release_request(payload: Any) -> ReleaseRequest:
    return ReleaseRequest(
        image=Path(payload["image"]),
        model=payload["model"],
        build=payload["build"],
        security_patch_level=date.fromisoformat(payload["security_patch_level"]),
        update_class=UpdateClass(payload["update_class"]),
        eligibility=Eligibility.from_json(payload["eligibility"]),
        notes=payload["notes"],
    )


def _publish(approved: Approved) -> dict[str, Any]:
    if approved.open_repository is None:
        raise UsageError(
            "publishing needs the image repository", hint="approve it where the repository is"
        )
    request = _release_request(approved.payload)
    rules = delivery_rules(approved.session)
    publication = publish(approved.open_repository(), request, rules=rules)
    release = publication.release
    result = {
        "target_path": release.target_path,
        "sha256": release.sha256,
        "eligibility": release.info.eligibility.to_json(),
    }
    payload = {**result, "reasons": list(publication.reasons), "approval": approved.approval()}
    append(
        approved.session,
        [AuditRecord(approved.now, "publish", approved.approved_by, release.target_path, payload)],
    )
    return result


def _check_publish(approved: Approved) -> dict[str, Any]:
    """Whether the rules in force allow the release now (nothing is signed)."""
    request = _release_request(approved.payload)
    signed = under_rules(request, delivery_rules(approved.session), approved.now.date())
    return {"reasons": list(signed.reasons)}


def rollout_start_payload(spec: rollouts.RolloutSpec) -> dict[str, Any]:
    """The proposal payload of a rollout to start."""
    return {"spec": rollouts.spec_json(spec)}


def rollout_widen_payload(rollout_id: str, reason: str) -> dict[str, Any]:
    """The proposal payload of widening a rollout to its next phase."""
    return {"rollout_id": rollout_id, "reason": reason}


def _start_rollout(approved: Approved) -> dict[str, Any]:
    spec = rollouts.spec_from_json(approved.payload["spec"])
    row = rollouts.create_rollout(
        approved.session, spec, approved.approved_by, approved.now, approval=approved.approval()
    )
    return {"rollout_id": row.id}


def _check_rollout_start(approved: Approved) -> dict[str, Any]:
    rollouts.check_startable(approved.session, rollouts.spec_from_json(approved.payload["spec"]))
    return {}


def _widen_rollout(approved: Approved) -> dict[str, Any]:
    p = approved.payload
    row = rollouts.act(
        approved.session,
        p["rollout_id"],
        "advance",
        approved.approved_by,
        p["reason"],
        approved.now,
        approval=approved.approval(),
    )
    return {"rollout_id": row.id, "phase": row.phase + 1, "state": row.state}


#: The applier of every action a proposal can carry (in the database's transaction).
APPLIERS: dict[Action, Applier] = {
    Action.RULE_CREATE: _create_rule,
    Action.RULE_AMEND: _amend_rule,
    Action.RELEASE_PUBLISH_UNDER_RULES: _publish,
    Action.ROLLOUT_START: _start_rollout,
    Action.ROLLOUT_WIDEN: _widen_rollout,
}

#: What checks a proposal of each action before it is stored (in a savepoint that is
#: rolled back), so that one the direct path would refuse now is refused, not proposed.
DRY_RUNS: dict[Action, Applier] = {
    Action.RULE_CREATE: _create_rule,
    Action.RULE_AMEND: _amend_rule,
    Action.RELEASE_PUBLISH_UNDER_RULES: _check_publish,
    Action.ROLLOUT_START: _check_rollout_start,
    Action.ROLLOUT_WIDEN: _widen_rollout,
}
