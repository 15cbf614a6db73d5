"""What every management API router shares: the runtime, the signed-in caller and the
roles that admit it (``require``), and running blocking database work off the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from patchline.server.api_guard import CALLER_KEY
from patchline.server.auth import GRANTS, Permission, Role
from patchline.server.runtime import Runtime

#: The signed-in caller: (token name, role).
Caller = tuple[str, Role]
T = TypeVar("T")


def runtime(request: Request) -> Runtime:
    """The process's runtime, kept on the app."""
    rt: Runtime = request.app.state.runtime
    return rt


_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A management API token (`patchline token create NAME --role ROLE`).",
)


def require(permission: Permission) -> Callable[..., Coroutine[Any, Any, Caller]]:
    """A dependency that admits tokens whose role grants ``permission`` (the token was
    checked by ``patchline.server.api_guard`` before the request got here)."""

    async def check(
        request: Request,
        _shown_in_openapi: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> Caller:
        caller: Caller | None = request.scope.get(CALLER_KEY)
        if caller is None:
            raise HTTPException(401, "a bearer token is required", {"WWW-Authenticate": "Bearer"})
        if permission not in GRANTS[caller[1]]:
            raise HTTPException(
                403, f"role {caller[1].value} may not do this (needs {permission.value})"
            )
        return caller

    return check


Rt = Annotated[Runtime, Depends(runtime)]
Reader = Annotated[Caller, Depends(require(Permission.READ))]
ReleaseManager = Annotated[Caller, Depends(require(Permission.RELEASES))]
Compliance = Annotated[Caller, Depends(require(Permission.POLICIES))]
Auditor = Annotated[Caller, Depends(require(Permission.AUDIT))]
Admin = Annotated[Caller, Depends(require(Permission.TOKENS))]
WebhookAdmin = Annotated[Caller, Depends(require(Permission.WEBHOOKS))]


def actor(caller: Caller) -> str:
    """How the audit chain names a caller."""
    return f"token:{caller[0]}"


async def in_thread(fn: Callable[[], T]) -> T:
    """Run blocking work off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, fn)


async def in_session(rt: Runtime, fn: Callable[[Session], T]) -> T:
    """Run ``fn`` in one database transaction, off the event loop."""

    def run() -> T:
        with rt.db.transaction() as session:
            return fn(session)

    return await in_thread(run)
