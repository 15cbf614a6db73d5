"""``/api/tokens``: list and revoke management API tokens (creating one is
``patchline token create``, on the server's machine)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path as PathParam

from patchline.server.api.bodies import OptionalReason
from patchline.server.api.deps import Admin, Rt, actor, in_session
from patchline.server.api.documented_errors import api_router
from patchline.server.api.schemas import Revoked, TokenOut
from patchline.server.auth import list_tokens, revoke_token

router = api_router(tags=["tokens"])


@router.get("/tokens")
async def get_tokens(rt: Rt, _caller: Admin) -> list[TokenOut]:
    """Every token: name, role, created, revoked (never the secret)."""
    return await in_session(rt, lambda s: [TokenOut.model_validate(t) for t in list_tokens(s)])


@router.post("/tokens/{name}/revoke")
async def revoke(
    rt: Rt,
    name: Annotated[str, PathParam(min_length=1, max_length=128)],
    body: OptionalReason,
    caller: Admin,
) -> Revoked:
    """Revoke a token: every process refuses it (401) from now on."""
    now = rt.clock.now()
    await in_session(rt, lambda s: revoke_token(s, name, now, actor(caller), body.reason))
    return Revoked(name=name, revoked=True)
