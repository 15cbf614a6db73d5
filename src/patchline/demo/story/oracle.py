"""An independent check of every install in the story: did the rules allow it that day?

This reads the rules directly (``Rule.status_on`` and ``Rule.scope``, the highest
priority applicable rule deciding, a block winning a tie), not through the signing
path or the agent, so a fault in either shows up as an install out of scope.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from patchline.policy import Amendment, Effect, Rule, RuleStatus, rule_on
from patchline.wire.release import UpdateClass


@dataclass(frozen=True)
class Verdict:
    """Whether the rules allowed an install, and the rule that decided (if any)."""

    allowed: bool
    rule: str


def rules_verdict(
    rules: Iterable[Rule],
    amendments: Iterable[Amendment],
    day: date,
    *,
    model: str,
    update_class: UpdateClass,
    region: str,
    deployed_on: date,
) -> Verdict:
    """What the rules in force on ``day`` say about installing a release of ``model`` and
    ``update_class`` on a device in ``region`` deployed on ``deployed_on``."""
    known = list(amendments)
    applicable = []
    for rule in rules:
        current = rule_on(rule, known, day)
        if current.status_on(day) is not RuleStatus.IN_FORCE:
            continue
        scope = current.scope(
            model=model, update_class=update_class, region=region, deployed_on=deployed_on
        )
        if scope.applies:
            applicable.append(current)
    if not applicable:
        return Verdict(False, "")
    applicable.sort(key=lambda r: (-r.priority, r.effect is not Effect.BLOCK, r.id))
    deciding = applicable[0]
    return Verdict(deciding.effect is Effect.ALLOW, deciding.id)
