"""The two-person rule at the edge of the management API: whether an action is held for a
second person, holding it (202 with the proposal), and which role may approve what."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from patchline.actions import Action
from patchline.approvals.gate import hold
from patchline.approvals.service import needs_second_person, proposal_json
from patchline.server.api.deps import Caller, actor, in_session
from patchline.server.auth import GRANTS, Permission
from patchline.server.runtime import Runtime

#: The permission a token needs to propose, approve or reject each action.
ACTION_PERMISSION: dict[Action, Permission] = {
    Action.RULE_CREATE: Permission.POLICIES,
    Action.RULE_AMEND: Permission.POLICIES,
    Action.RELEASE_PUBLISH_UNDER_RULES: Permission.RELEASES,
    Action.ROLLOUT_START: Permission.RELEASES,
    Action.ROLLOUT_WIDEN: Permission.RELEASES,
}


def check_may(caller: Caller, action: Action) -> None:
    """Raise 403 unless ``caller``'s role may do ``action``."""
    needed = ACTION_PERMISSION[action]
    if needed not in GRANTS[caller[1]]:
        raise HTTPException(
            403, f"role {caller[1].value} may not approve {action.value} (needs {needed.value})"
        )


def held_for_second_person(rt: Runtime, action: Action) -> bool:
    """True when this server's settings hold ``action`` for a second person."""
    return needs_second_person(rt.settings.second_person_actions(), action)


async def hold_if_required(
    rt: Runtime, caller: Caller, action: Action, payload: Mapping[str, Any], summary: str
) -> JSONResponse | None:
    """When the settings hold ``action`` for a second person, store it as a proposal by
    ``caller`` and return the 202 answer carrying it; else None (go ahead)."""
    if not held_for_second_person(rt, action):
        return None
    now = rt.clock.now()
    required = rt.settings.second_person_actions()

    def held(session: Session) -> dict[str, Any]:
        row = hold(session, required, action, payload, summary, actor(caller), now)
        assert row is not None  # held_for_second_person said so
        return proposal_json(row)

    return JSONResponse(await in_session(rt, held), status_code=202)
