"""Delivery rules and the decision they give for one device, with reasons.

Pure logic, no database, no HTTP, no repository: it depends only on ``patchline.wire`` (formats and
build order), ``patchline.clock`` and ``patchline.errors``.
The director (``patchline.director``) turns database rows into these objects and caches
decisions per cohort; the audit chain is ``patchline.audit``. The public surface::

    Rule, Amendment, Effect, rule_on, rule_history       rules and their amendments
    DeviceFacts, ReleaseFacts, DeltaFacts                 what the director knows
    decide(...) -> Decision, cohort_key, decision_digest  the answer for one device
    explain(...) -> Explanation                           the answer and everything behind it
"""

from patchline.policy.decide import (
    Action,
    CohortKey,
    Decision,
    cohort_key,
    decide,
    decision_digest,
)
from patchline.policy.explain import Explanation, explain
from patchline.policy.facts import DeltaFacts, DeviceFacts, ReleaseFacts
from patchline.policy.rules import (
    Amendment,
    Effect,
    Rule,
    RuleStatus,
    RuleVersion,
    rule_history,
    rule_on,
)

__all__ = [
    "Action",
    "Amendment",
    "CohortKey",
    "Decision",
    "DeltaFacts",
    "DeviceFacts",
    "Effect",
    "Explanation",
    "ReleaseFacts",
    "Rule",
    "RuleStatus",
    "RuleVersion",
    "cohort_key",
    "decide",
    "decision_digest",
    "explain",
    "rule_history",
    "rule_on",
]
