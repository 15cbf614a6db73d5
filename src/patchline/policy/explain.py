"""What-if: the decision for a device on a day, with every check behind it.

``explain`` answers "what would this device get on date D, and why?": the decision
(exactly what ``decide`` returns), every candidate release with whether it is allowed
and each eligibility, rule and phone check that said so, the releases passed over,
and every rule as it reads on that day with the amendments in effect and still to
come. ``Explanation.to_json()`` is the body of ``GET /api/devices/{id}/explain?at=D``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from patchline.policy.decide import Decision, decision_from
from patchline.policy.evaluate import Assessment, PassedOver, evaluate
from patchline.policy.facts import DeviceFacts, ReleaseFacts
from patchline.policy.rules import Amendment, Rule, RuleStatus, amendments_of, status_sentence


@dataclass(frozen=True)
class RuleState:
    """One rule on the explained day: the version in force and its amendments."""

    rule: Rule
    status: RuleStatus
    status_sentence: str
    applied: tuple[Amendment, ...]
    pending: tuple[Amendment, ...]

    def to_json(self) -> dict[str, Any]:
        """Return the rule's state as JSON values."""
        return {
            "rule_id": self.rule.id,
            "status": self.status.value,
            "status_sentence": self.status_sentence,
            "rule": self.rule.to_json(),
            "sentence": self.rule.describe(),
            "amendments_applied": [a.to_json() for a in self.applied],
            "amendments_pending": [a.to_json() for a in self.pending],
        }


@dataclass(frozen=True)
class Explanation:
    """The decision for one device on one day, and everything behind it."""

    day: date
    device: DeviceFacts
    decision: Decision
    candidates: tuple[Assessment, ...]
    passed_over: tuple[PassedOver, ...]
    rules: tuple[RuleState, ...]

    def to_json(self) -> dict[str, Any]:
        """Return the explanation as JSON values (dates as YYYY-MM-DD)."""
        offered = self.decision.release
        return {
            "day": self.day.isoformat(),
            "device": self.device.to_json(),
            "decision": self.decision.to_json(),
            "candidates": [
                {**a.to_json(), "offered": offered is not None and a.release is offered}
                for a in self.candidates
            ],
            "passed_over": [p.to_json() for p in self.passed_over],
            "rules": [r.to_json() for r in self.rules],
        }


def explain(
    device: DeviceFacts,
    releases: Iterable[ReleaseFacts],
    rules: Iterable[Rule],
    amendments: Iterable[Amendment],
    day: date,
) -> Explanation:
    """Explain the decision ``decide`` gives for these facts, assessing every candidate
    (not only those up to the offer). Raises what ``decide`` raises."""
    rule_list = list(rules)
    amendment_list = list(amendments)
    evaluation = evaluate(device, releases, rule_list, amendment_list, day, stop_at_offer=False)
    states = []
    for original, current in zip(rule_list, evaluation.rules, strict=True):
        own = amendments_of(original.id, amendment_list)
        states.append(
            RuleState(
                rule=current,
                status=current.status_on(day),
                status_sentence=status_sentence(current, amendment_list, day),
                applied=tuple(a for a in own if a.effective_from <= day),
                pending=tuple(a for a in own if a.effective_from > day),
            )
        )
    return Explanation(
        day=day,
        device=device,
        decision=decision_from(device, evaluation, day),
        candidates=evaluation.candidates,
        passed_over=evaluation.passed_over,
        rules=tuple(states),
    )
