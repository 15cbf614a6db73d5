"""Management API for withdrawing things: revoke a token, decommission a device, yank a
release. Each change is recorded in the audit chain with who did it and why."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from patchline.director.yank import yank
from patchline.fleet.decommission import decommission
from patchline.repository.lapse import lapse_release
from patchline.repository.publisher import Repository
from patchline.server.auth import Permission, list_tokens, revoke_token
from patchline.server.management_api import (
    Caller,
    ReleaseManager,
    device_json,
    in_thread,
    release_json,
    require,
    runtime,
)
from patchline.store.models import Release

Admin = Annotated[Caller, Depends(require(Permission.TOKENS))]

router = APIRouter(prefix="/api")


class Reason(BaseModel):
    """Why: kept in the audit chain."""

    reason: str = Field(min_length=1, max_length=2000)


class OptionalReason(BaseModel):
    """Why, if given: kept in the audit chain."""

    reason: str = Field(default="", max_length=2000)


class YankBody(Reason):
    """Why, and whether to re-sign the release as lapsed in this server's repository."""

    lapse_signed: bool = Field(
        default=True,
        description="Also re-sign the release valid until today in the repository in the "
        "server's home (its keys and passphrases), so agents refuse it offline too.",
    )


# --- tokens -------------------------------------------------------------------------


@router.get("/tokens", tags=["tokens"])
async def get_tokens(request: Request, _caller: Admin) -> list[dict[str, Any]]:
    """Every token: name, role, created, revoked (never the secret)."""
    rt = runtime(request)

    def query() -> list[dict[str, Any]]:
        with rt.db.transaction() as session:
            return [t.to_json() for t in list_tokens(session)]

    result: list[dict[str, Any]] = await in_thread(query)
    return result


@router.post("/tokens/{name}/revoke", tags=["tokens"])
async def revoke(
    request: Request,
    name: Annotated[str, PathParam(min_length=1, max_length=128)],
    body: OptionalReason,
    caller: Admin,
) -> dict[str, Any]:
    """Revoke a token: every process refuses it (401) from now on."""
    rt = runtime(request)

    def change() -> None:
        with rt.db.transaction() as session:
            revoke_token(session, name, rt.clock.now(), f"token:{caller[0]}", body.reason)

    await in_thread(change)
    return {"name": name, "revoked": True}


# --- devices ------------------------------------------------------------------------


@router.post("/devices/{device_id}/decommission", tags=["devices"])
async def decommission_device(
    request: Request,
    device_id: Annotated[str, PathParam(min_length=1, max_length=40)],
    body: Reason,
    caller: Admin,
) -> dict[str, Any]:
    """Take a device out of service: its credential gets 401 on the device API, it is
    offered nothing, it cannot enroll again; its records stay."""
    rt = runtime(request)

    def change() -> dict[str, Any]:
        with rt.db.transaction() as session:
            row = decommission(
                session, device_id, body.reason, f"token:{caller[0]}", rt.clock.now()
            )
            return device_json(row)

    result: dict[str, Any] = await in_thread(change)
    await in_thread(rt.reload_catalog_if_changed)
    return result


# --- releases -----------------------------------------------------------------------


@router.post("/releases/{release_id}/yank", tags=["releases"])
async def yank_release(
    request: Request,
    release_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)],
    body: YankBody,
    caller: ReleaseManager,
) -> dict[str, Any]:
    """Withdraw a release: no device is offered it from now on (the next-best allowed
    build is); devices already on it keep it. With ``lapse_signed`` and a repository in
    the server's home, its signed eligibility is re-signed valid until today too."""
    rt = runtime(request)
    now = rt.clock.now()

    def change() -> dict[str, Any]:
        with rt.db.transaction() as session:
            row = yank(session, release_id, body.reason, f"token:{caller[0]}", now)
            model, build = row.model, row.build
            if body.lapse_signed and rt.repository is not None:
                # Signed before the yank commits: a signing failure changes nothing.
                repo = Repository.open(rt.settings.home, rt.settings, clock=rt.clock)
                lapse_release(repo, model, build, now.date())
        rt.sync_releases()
        with rt.db.transaction() as session:
            return release_json(session.get_one(Release, release_id))

    result: dict[str, Any] = await in_thread(change)
    await in_thread(rt.reload_catalog_if_changed)
    return result
