"""The overview: the fleet by security patch level (a chart), by model and region,
install outcomes and sources per day, and what needs attention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from patchline.approvals import service as approvals
from patchline.director.rollout_gate import HALTED
from patchline.fleet import overview, rollouts, support
from patchline.repository.state import load_state
from patchline.server.api.deps import Rt, in_session, in_thread
from patchline.server.console.access import Reader
from patchline.server.console.charts import patch_level_chart, per_day_chart
from patchline.server.console.render import page
from patchline.server.runtime import Runtime
from patchline.store.models import Rollout

router = APIRouter()

#: A patch older than this is "stale" on the overview and the support page by default.
STALE_AFTER = timedelta(days=90)
#: A device heard from within this long is "reachable".
REACHABLE_WITHIN = timedelta(days=7)
#: Days of reports the per-day charts show.
DAYS_SHOWN = 14
#: Signed roles expiring within this long are listed (timestamp and snapshot are
#: re-signed by a timer every day and are listed only once expired).
ROLE_WARNING = timedelta(days=14)


@dataclass(frozen=True)
class Overview:
    """What the overview page shows, counted by the database in one transaction."""

    devices: int
    levels: list[overview.PatchLevelCount]
    regions: list[overview.ModelRegionRow]
    outcomes: list[overview.DayCount]
    sources: list[overview.DayCount]
    halted: list[Rollout]
    open_rollouts: int
    pending_proposals: int
    support: list[support.ModelSupport]


def load_overview(session: Session, now: datetime) -> Overview:
    """The overview's figures as of ``now``."""
    today = now.date()
    since = today - timedelta(days=DAYS_SHOWN - 1)
    every = rollouts.list_rollouts(session)
    cells = overview.fleet_cells(session, now - REACHABLE_WITHIN)
    return Overview(
        devices=sum(c.devices for c in cells),
        levels=overview.devices_by_patch_level(cells),
        regions=overview.devices_by_model_region(cells, today - STALE_AFTER),
        outcomes=overview.reports_per_day(session, since),
        sources=overview.installs_per_day_by_source(session, since),
        halted=[r for r in every if r.state == HALTED],
        open_rollouts=sum(r.state in ("active", "paused", "halted") for r in every),
        pending_proposals=len(approvals.list_proposals(session, "pending")),
        support=support.summarise(
            cells, support.list_promises(session), today, today - STALE_AFTER
        ),
    )


def expiring_roles(rt: Runtime, now: datetime) -> list[tuple[str, datetime]]:
    """The signed roles of the repository expired or expiring soon, soonest first
    (read from the published metadata; none when the server has no repository)."""
    layout = rt.repository
    if layout is None:
        return []
    found = []
    for name, md in load_state(layout).signed_roles():
        expires = md.signed.expires
        short_lived = name in ("timestamp", "snapshot")
        if expires <= now or (not short_lived and expires - now < ROLE_WARNING):
            found.append((name, expires))
    return sorted(found, key=lambda item: item[1])


def level_rows(data: Overview, today: date) -> list[dict[str, Any]]:
    """Devices per patch level across models, newest first, with the level's age."""
    totals: dict[date, int] = {}
    for c in data.levels:
        totals[c.patch_level] = totals.get(c.patch_level, 0) + c.devices
    return [
        {"level": level, "age_days": (today - level).days, "devices": n}
        for level, n in sorted(totals.items(), reverse=True)
    ]


@router.get("/", include_in_schema=False)
async def overview_page(request: Request, rt: Rt, seen: Reader) -> Response:
    """The overview page."""
    now = rt.clock.now()
    data = await in_session(rt, lambda s: load_overview(s, now))
    roles = await in_thread(lambda: expiring_roles(rt, now))
    today = now.date()
    first = today - timedelta(days=DAYS_SHOWN - 1)
    return page(
        request,
        seen,
        "overview.html",
        title="Overview",
        data=data,
        levels=level_rows(data, today),
        roles=roles,
        past_support=[m for m in data.support if m.past_support],
        charts={
            "patch-levels": patch_level_chart(data.levels),
            "outcomes": per_day_chart(data.outcomes, first, today, overview.OUTCOMES),
            "sources": per_day_chart(data.sources, first, today, overview.SOURCES),
        },
        stale_days=STALE_AFTER.days,
    )
