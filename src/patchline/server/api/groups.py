"""``/api/groups``: named device groups that rollouts select (``selection.groups``).
Release managers create them and change their members; anyone who may read sees them.
Changes reach every server process's rollouts within a second."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path as PathParam
from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from patchline.fleet import groups
from patchline.server.api.bodies import Text
from patchline.server.api.deps import Reader, ReleaseManager, Rt, actor, in_session, in_thread
from patchline.server.api.documented_errors import api_router
from patchline.server.api.schemas import Instant
from patchline.wire.release import NAME_PATTERN

router = api_router(tags=["groups"])

GroupName = Annotated[str, PathParam(pattern=NAME_PATTERN, max_length=64)]
DeviceIds = Annotated[list[Annotated[str, Field(min_length=1, max_length=40)]], Field()]


class GroupBody(BaseModel):
    """A new, empty device group."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    description: Text = ""


class MembersBody(BaseModel):
    """Devices to add to and remove from a group, and why (kept in the audit chain)."""

    model_config = ConfigDict(extra="forbid")

    add: DeviceIds = Field(default_factory=list, max_length=groups.MAX_CHANGE)
    remove: DeviceIds = Field(default_factory=list, max_length=groups.MAX_CHANGE)
    reason: Text = ""


class GroupRetryBody(BaseModel):
    """The build to offer again to every member it failed on, and why."""

    model_config = ConfigDict(extra="forbid")

    build: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    reason: str = Field(min_length=1, max_length=2000)


class ReasonBody(BaseModel):
    """Why (kept in the audit chain)."""

    model_config = ConfigDict(extra="forbid")

    reason: Text = ""


class GroupOut(BaseModel):
    """A device group, its size, and the open rollouts that select it."""

    name: str
    description: str
    created_at: Instant
    created_by: str
    members: int
    rollouts: list[str] = Field(description="Open rollouts that select the group.")

    @classmethod
    def of(cls, summary: groups.GroupSummary) -> GroupOut:
        """The body for one group."""
        return cls(
            name=summary.name,
            description=summary.description,
            created_at=summary.created_at,
            created_by=summary.created_by,
            members=summary.members,
            rollouts=list(summary.rollouts),
        )


class MembersOut(BaseModel):
    """A page of a group's device ids, sorted."""

    group: str
    offset: int
    device_ids: list[str]


class MembersChangedOut(BaseModel):
    """How many devices a change really added and removed, and the group after it."""

    added: int
    removed: int
    group: GroupOut


class RetriedOut(BaseModel):
    """The members the build is offered to again."""

    group: str
    build: str
    device_ids: list[str]


def _summary(session: Session, name: str) -> GroupOut:
    groups.get_group(session, name)
    return GroupOut.of(groups.summaries(session, [name])[0])


@router.get("/groups")
async def list_groups(rt: Rt, _caller: Reader) -> list[GroupOut]:
    """Every device group by name, with its member count."""
    return await in_session(rt, lambda s: [GroupOut.of(g) for g in groups.summaries(s)])


@router.post("/groups", status_code=201)
async def create_group(rt: Rt, body: GroupBody, caller: ReleaseManager) -> GroupOut:
    """Create an empty group; 409 when the name is taken."""
    now = rt.clock.now()

    def create(session: Session) -> GroupOut:
        groups.create_group(session, body.name, body.description, actor(caller), now)
        session.flush()
        return _summary(session, body.name)

    return await in_session(rt, create)


@router.get("/groups/{name}")
async def show_group(rt: Rt, name: GroupName, _caller: Reader) -> GroupOut:
    """One group; 404 when there is none."""
    return await in_session(rt, lambda s: _summary(s, name))


@router.get("/groups/{name}/members")
async def list_members(
    rt: Rt,
    name: GroupName,
    _caller: Reader,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> MembersOut:
    """A page of the group's device ids, sorted."""

    def page(session: Session) -> MembersOut:
        ids = groups.member_ids(session, name, offset=offset, limit=limit)
        return MembersOut(group=name, offset=offset, device_ids=ids)

    return await in_session(rt, page)


@router.post("/groups/{name}/members")
async def change_members(
    rt: Rt, name: GroupName, body: MembersBody, caller: ReleaseManager
) -> MembersChangedOut:
    """Add and remove devices (404 naming devices not enrolled, and nothing changes);
    the rollouts that select the group see the change from the devices' next check-in."""
    now = rt.clock.now()

    def change(session: Session) -> MembersChangedOut:
        added, removed = groups.change_members(
            session,
            name,
            add=body.add,
            remove=body.remove,
            reason=body.reason,
            actor=actor(caller),
            now=now,
        )
        session.flush()
        return MembersChangedOut(added=added, removed=removed, group=_summary(session, name))

    result = await in_session(rt, change)
    await in_thread(rt.reload_catalog_if_changed)
    return result


@router.delete("/groups/{name}")
async def delete_group(
    rt: Rt, name: GroupName, caller: ReleaseManager, body: ReasonBody | None = None
) -> GroupOut:
    """Remove a group and its memberships (the devices stay enrolled); 409 while an
    open rollout selects it. Returns the group as it was."""
    now = rt.clock.now()
    reason = body.reason if body is not None else ""

    def remove(session: Session) -> GroupOut:
        before = _summary(session, name)
        groups.delete_group(session, name, reason, actor(caller), now)
        return before

    return await in_session(rt, remove)


@router.post("/groups/{name}/retry")
async def retry_group(
    rt: Rt, name: GroupName, body: GroupRetryBody, caller: ReleaseManager
) -> RetriedOut:
    """Offer a build again to every member it failed on (each an audited retry, as for
    one device); members it did not fail on are left as they are."""
    now = rt.clock.now()

    def retry(session: Session) -> RetriedOut:
        ids = groups.retry_group(session, name, body.build, body.reason, actor(caller), now)
        return RetriedOut(group=name, build=body.build, device_ids=ids)

    result = await in_session(rt, retry)
    for device_id in result.device_ids:
        rt.devices.forget(device_id)
    return result
