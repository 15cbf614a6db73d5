"""Support: per model the promised end of security updates, the devices past it, the
devices whose patch is older than a chosen age, and how many of each are still
reachable; a release manager sets a model's promise here."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from patchline.fleet import support
from patchline.server.api.deps import Rt, in_session
from patchline.server.console.access import Reader
from patchline.server.console.overview_page import REACHABLE_WITHIN, STALE_AFTER
from patchline.server.console.render import page

router = APIRouter()


@router.get("/support", include_in_schema=False)
async def support_page(
    request: Request,
    rt: Rt,
    seen: Reader,
    older_than_days: Annotated[int, Query(ge=0, le=36500)] = STALE_AFTER.days,
) -> Response:
    """Per model: promise, devices past it, devices with a patch older than
    ``older_than_days``, and of each how many checked in within a week."""
    now = rt.clock.now()
    today = now.date()
    rows = await in_session(
        rt,
        lambda s: support.support_by_model(
            s, today, today - timedelta(days=older_than_days), now - REACHABLE_WITHIN
        ),
    )
    return page(
        request,
        seen,
        "support.html",
        title="Support",
        rows=rows,
        older_than_days=older_than_days,
        reachable_days=REACHABLE_WITHIN.days,
        today=today,
        done=request.query_params.get("done", ""),
    )
