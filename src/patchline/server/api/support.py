"""``/api/support``: the security support each model's maker promised (until a date), and
the devices it leaves behind. Release managers set promises; anyone who may read sees
them."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import Path as PathParam
from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from patchline.fleet import support
from patchline.server.api.bodies import IsoDate
from patchline.server.api.deps import Reader, ReleaseManager, Rt, actor, in_session
from patchline.server.api.documented_errors import api_router

router = api_router(tags=["support"])


class PromiseBody(BaseModel):
    """A model's promised end of security updates."""

    model_config = ConfigDict(extra="forbid")

    security_until: IsoDate = Field(description="The last day security updates are promised.")
    note: str = Field("", max_length=2000, description="E.g. 'five years after launch'.")


class PromiseOut(BaseModel):
    """A model's promise as stored."""

    model: str
    security_until: date
    note: str
    set_at: datetime
    set_by: str


class ModelSupportOut(BaseModel):
    """A model's promise and the devices it leaves behind."""

    model: str
    security_until: date | None
    note: str
    devices: int
    past_support: int
    past_support_reachable: int
    stale_patch: int
    stale_patch_reachable: int


@router.put("/support/{model}")
async def set_promise(
    rt: Rt,
    model: Annotated[str, PathParam(min_length=1, max_length=64)],
    body: PromiseBody,
    caller: ReleaseManager,
) -> PromiseOut:
    """Set (or replace) the date until which ``model`` gets security updates; audited."""
    now = rt.clock.now()

    def store(session: Session) -> PromiseOut:
        row = support.set_promise(
            session, model, body.security_until, body.note, actor(caller), now
        )
        return PromiseOut(
            model=row.model,
            security_until=row.security_until,
            note=row.note,
            set_at=row.set_at,
            set_by=row.set_by,
        )

    return await in_session(rt, store)


@router.get("/support")
async def list_support(
    rt: Rt,
    _caller: Reader,
    older_than_days: Annotated[int, Query(ge=0, le=36500)] = 90,
    reachable_days: Annotated[int, Query(ge=1, le=3650)] = 7,
) -> list[ModelSupportOut]:
    """Per model: its promise, how many devices in service are past it today, how many run
    a security patch older than ``older_than_days``, and of each how many checked in
    within ``reachable_days``."""
    now = rt.clock.now()
    today = now.date()
    rows = await in_session(
        rt,
        lambda s: support.support_by_model(
            s,
            today,
            today - timedelta(days=older_than_days),
            now - timedelta(days=reachable_days),
        ),
    )
    return [ModelSupportOut(**vars(r)) for r in rows]
