"""Named device groups: sets of devices that rollouts select by name.

A group's membership is resolved when the catalog loads (every server process reloads
it within a second of a change, through the catalog version), so adding a device to a
group a rollout selects brings it into that rollout's next answer. Every change is an
audit entry naming who made it and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from patchline.audit import AuditRecord, append
from patchline.director.releases_sync import bump_catalog
from patchline.director.rollout_gate import ABORTED, COMPLETED, Selection
from patchline.errors import GroupConflictError, NotFoundError, UsageError
from patchline.fleet.beliefs import retry_build
from patchline.store.models import Device, DeviceGroup, DeviceGroupMember, Rollout

#: Most devices one request may add or remove.
MAX_CHANGE = 100_000


@dataclass(frozen=True)
class GroupSummary:
    """A group, how many devices it holds, and the open rollouts that select it."""

    name: str
    description: str
    created_at: datetime
    created_by: str
    members: int
    rollouts: tuple[str, ...]


def create_group(
    session: Session, name: str, description: str, actor: str, now: datetime
) -> DeviceGroup:
    """Create an empty group; GroupConflictError when the name is taken."""
    if session.get(DeviceGroup, name) is not None:
        raise GroupConflictError(f"group {name} exists", hint="patchline group show " + name)
    row = DeviceGroup(name=name, description=description, created_at=now, created_by=actor)
    session.add(row)
    append(session, [AuditRecord(now, "group-create", actor, name, {"description": description})])
    return row


def get_group(session: Session, name: str) -> DeviceGroup:
    """The group named ``name``; NotFoundError when there is none."""
    row = session.get(DeviceGroup, name)
    if row is None:
        raise NotFoundError(f"no device group {name}", hint="patchline group list")
    return row


def summaries(session: Session, names: list[str] | None = None) -> list[GroupSummary]:
    """Every group (or those named), by name, with member counts and open rollouts."""
    query = select(DeviceGroup).order_by(DeviceGroup.name)
    if names is not None:
        query = query.where(DeviceGroup.name.in_(names))
    groups = list(session.scalars(query))
    count_query = select(DeviceGroupMember.group_name, func.count()).group_by(
        DeviceGroupMember.group_name
    )
    counts: dict[str, int] = dict(session.execute(count_query).tuples().all())
    selecting = _open_rollouts_by_group(session)
    return [
        GroupSummary(
            g.name,
            g.description,
            g.created_at,
            g.created_by,
            counts.get(g.name, 0),
            tuple(selecting.get(g.name, ())),
        )
        for g in groups
    ]


def member_ids(session: Session, name: str, *, offset: int = 0, limit: int = 1000) -> list[str]:
    """A page of the group's device ids, sorted."""
    get_group(session, name)
    query = (
        select(DeviceGroupMember.device_id)
        .where(DeviceGroupMember.group_name == name)
        .order_by(DeviceGroupMember.device_id)
        .offset(offset)
        .limit(limit)
    )
    return list(session.scalars(query))


def change_members(
    session: Session,
    name: str,
    *,
    add: list[str],
    remove: list[str],
    reason: str,
    actor: str,
    now: datetime,
) -> tuple[int, int]:
    """Add and remove devices; returns (added, removed), counting only real changes.
    Every device named must be enrolled (NotFoundError naming the first few that are
    not, and nothing changes). Audited; every server process applies it to the rollouts
    that select the group."""
    get_group(session, name)
    if len(add) + len(remove) > MAX_CHANGE:
        raise UsageError(f"at most {MAX_CHANGE} devices per change")
    overlap = set(add) & set(remove)
    if overlap:
        raise UsageError(f"added and removed at once: {', '.join(sorted(overlap)[:5])}")
    wanted = sorted(set(add) | set(remove))
    known: set[str] = set()
    for chunk in _chunks(wanted):
        known.update(session.scalars(select(Device.id).where(Device.id.in_(chunk))))
    unknown = [d for d in wanted if d not in known]
    if unknown:
        raise NotFoundError(
            f"{len(unknown)} device(s) not enrolled: {', '.join(unknown[:5])}",
            hint="GET /api/devices lists the enrolled devices",
        )
    present: set[str] = set()
    for chunk in _chunks(wanted):
        present.update(
            session.scalars(
                select(DeviceGroupMember.device_id).where(
                    DeviceGroupMember.group_name == name, DeviceGroupMember.device_id.in_(chunk)
                )
            )
        )
    to_add = sorted(set(add) - present)
    to_remove = sorted(set(remove) & present)
    session.add_all(DeviceGroupMember(group_name=name, device_id=d, added_at=now) for d in to_add)
    for chunk in _chunks(to_remove):
        session.execute(
            delete(DeviceGroupMember).where(
                DeviceGroupMember.group_name == name, DeviceGroupMember.device_id.in_(chunk)
            )
        )
    if to_add or to_remove:
        append(
            session,
            [
                AuditRecord(
                    now,
                    "group-members",
                    actor,
                    name,
                    {"added": to_add, "removed": to_remove, "reason": reason},
                )
            ],
        )
        bump_catalog(session)
    return len(to_add), len(to_remove)


def delete_group(session: Session, name: str, reason: str, actor: str, now: datetime) -> None:
    """Remove a group and its memberships; GroupConflictError while an open rollout
    selects it (its cohort would change under it)."""
    get_group(session, name)
    selecting = _open_rollouts_by_group(session).get(name)
    if selecting:
        raise GroupConflictError(
            f"group {name} is selected by open rollout(s) {', '.join(selecting)}",
            hint="complete or abort them first",
        )
    count = session.scalar(
        select(func.count())
        .select_from(DeviceGroupMember)
        .where(DeviceGroupMember.group_name == name)
    )
    session.execute(delete(DeviceGroupMember).where(DeviceGroupMember.group_name == name))
    session.execute(delete(DeviceGroup).where(DeviceGroup.name == name))
    append(
        session,
        [AuditRecord(now, "group-delete", actor, name, {"members": count, "reason": reason})],
    )


def retry_group(
    session: Session, name: str, build: str, reason: str, actor: str, now: datetime
) -> list[str]:
    """Offer ``build`` again to every member it failed on (each an audited retry, as
    for one device); returns their ids, sorted. Members it did not fail on are left."""
    get_group(session, name)
    query = (
        select(Device)
        .join(DeviceGroupMember, DeviceGroupMember.device_id == Device.id)
        .where(DeviceGroupMember.group_name == name, Device.failed_builds.is_not(None))
        .order_by(Device.id)
    )
    retried = [row.id for row in session.scalars(query) if build in (row.failed_builds or {})]
    for device_id in retried:
        retry_build(session, device_id, build, reason, actor, now)
    return retried


def check_groups_exist(session: Session, selection: Selection) -> None:
    """NotFoundError naming the groups a selection names that do not exist."""
    if not selection.groups:
        return
    found = set(
        session.scalars(select(DeviceGroup.name).where(DeviceGroup.name.in_(selection.groups)))
    )
    missing = [g for g in selection.groups if g not in found]
    if missing:
        raise NotFoundError(
            f"no device group {', '.join(missing)}", hint="patchline group create NAME"
        )


def _open_rollouts_by_group(session: Session) -> dict[str, list[str]]:
    """Group name -> ids of the rollouts not completed or aborted that select it."""
    out: dict[str, list[str]] = {}
    query = select(Rollout.id, Rollout.selection, Rollout.state).order_by(Rollout.seq)
    for rollout_id, selection, state in session.execute(query):
        if state in (COMPLETED, ABORTED):
            continue
        for group in (selection or {}).get("groups", ()):
            out.setdefault(group, []).append(rollout_id)
    return out


def _chunks(ids: list[str], size: int = 5000) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]
