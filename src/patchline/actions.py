"""The actions the two-person rule (``patchline.approvals``) can hold for a second person,
by name; shared by the settings, which name them, and every layer that makes them."""

from __future__ import annotations

import enum


class Action(enum.StrEnum):
    """A change that ``PATCHLINE_TWO_PERSON_ACTIONS`` may require a second person for."""

    RULE_CREATE = "rule.create"
    RULE_AMEND = "rule.amend"
    RELEASE_PUBLISH_UNDER_RULES = "release.publish-under-rules"
    #: Reserved for staged rollouts: starting one, and widening one past a phase.
    ROLLOUT_START = "rollout.start"
    ROLLOUT_WIDEN = "rollout.widen"


def parse_actions(names: list[str]) -> frozenset[Action]:
    """The actions named, each checked; raises ValueError naming an unknown one."""
    known = {a.value for a in Action}
    chosen = set()
    for name in (n.strip() for n in names):
        if not name:
            continue
        if name not in known:
            raise ValueError(f"{name!r} is not an action (one of {', '.join(sorted(known))})")
        chosen.add(Action(name))
    return frozenset(chosen)
