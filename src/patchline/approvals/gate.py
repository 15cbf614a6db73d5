"""The one call that holds an action for a second person when the settings say so, for
any path that makes a change (the management API, the command line, staged rollouts)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from patchline.actions import Action
from patchline.approvals.appliers import DRY_RUNS
from patchline.approvals.service import needs_second_person, propose
from patchline.store.models import Proposal


def hold(
    session: Session,
    required: frozenset[Action],
    action: Action,
    payload: Mapping[str, Any],
    summary: str,
    proposed_by: str,
    now: datetime,
) -> Proposal | None:
    """When ``required`` (``Settings.second_person_actions()``) holds ``action``, store it
    as a proposal by ``proposed_by`` in the caller's transaction and return it: the caller
    makes no change and answers 202 with it. Else None: the caller goes ahead.

    The proposal is applied, on approval, by ``APPLIERS[action]``; one the action's dry run
    refuses now raises that error and stores nothing."""
    if not needs_second_person(required, action):
        return None
    return propose(session, action, payload, summary, proposed_by, now, DRY_RUNS.get(action))
