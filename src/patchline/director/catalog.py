"""The director's working set: releases and rules read from the database, cached.

Each server process holds one Catalog and reloads it when the shared catalog version
changes (a release synced, a rule written or amended, an offer setting edited).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from patchline.director.releases_sync import catalog_version
from patchline.director.rollout_gate import COMPLETED, RolloutView, Selection
from patchline.policy.facts import DeltaFacts, ReleaseFacts
from patchline.policy.rules import Amendment, Rule
from patchline.store.models import (
    DeviceGroupMember,
    Policy,
    PolicyAmendment,
    Release,
    Rollout,
)
from patchline.wire.release import Eligibility, UpdateClass


@dataclass(frozen=True)
class Catalog:
    """Releases by model, rules and amendments, at one catalog version."""

    version: int = -1
    releases: dict[str, tuple[ReleaseFacts, ...]] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    amendments: tuple[Amendment, ...] = ()
    #: When each rule was first written (rule id -> instant), for ``known_on``.
    rules_recorded: dict[str, datetime] = field(default_factory=dict)
    #: The newest rollout not completed of each release, by (model, build).
    rollouts: dict[tuple[str, str], RolloutView] = field(default_factory=dict)

    def releases_of(self, model: str) -> tuple[ReleaseFacts, ...]:
        """The full-image releases of one model (with their deltas)."""
        return self.releases.get(model, ())

    def known_on(self, day: date | None) -> tuple[tuple[Rule, ...], tuple[Amendment, ...]]:
        """The rules and amendments as they were known at the end of ``day``: those
        recorded by then, whatever dates they take effect on (``None``: all known now)."""
        if day is None:
            return self.rules, self.amendments
        recorded = self.rules_recorded
        rules = tuple(r for r in self.rules if r.id not in recorded or recorded[r.id].date() <= day)
        ids = {r.id for r in rules}
        return rules, tuple(a for a in self.amendments if a.rule_id in ids and a.known_on(day))


def load_catalog(session: Session) -> Catalog:
    """Read every release not yanked (with its deltas), rule and amendment into a Catalog."""
    version = catalog_version(session)
    deltas: dict[str, list[DeltaFacts]] = defaultdict(list)
    fulls: list[Release] = []
    for row in session.scalars(select(Release).where(Release.yanked_at.is_(None))):
        if row.kind == "delta" and row.full_target and row.source_build and row.source_sha256:
            deltas[row.full_target].append(
                DeltaFacts(
                    target_path=row.target_path,
                    source_build=row.source_build,
                    source_sha256=row.source_sha256,
                    length=row.length,
                    sha256=row.sha256,
                )
            )
        elif row.kind == "full":
            fulls.append(row)
    releases: dict[str, list[ReleaseFacts]] = defaultdict(list)
    for row in fulls:
        releases[row.model].append(
            ReleaseFacts(
                target_path=row.target_path,
                model=row.model,
                build=row.build,
                length=row.length,
                sha256=row.sha256,
                security_patch_level=row.security_patch_level or date.min,
                update_class=UpdateClass(row.update_class or "functional"),
                eligibility=Eligibility.from_json(row.eligibility or {}),
                min_battery_percent=row.min_battery_percent,
                allowed_networks=frozenset(row.allowed_networks or ()),
                deltas=tuple(deltas.get(row.target_path, ())),
            )
        )
    policies = list(session.scalars(select(Policy)))
    rules = tuple(Rule.from_json(p.body) for p in policies)
    amendments = tuple(
        amendment_of(a)
        for a in session.scalars(select(PolicyAmendment).order_by(PolicyAmendment.id))
    )
    return Catalog(
        version=version,
        releases={model: tuple(items) for model, items in releases.items()},
        rules=rules,
        amendments=amendments,
        rules_recorded={p.id: aware(p.created_at) for p in policies},
        rollouts=load_rollout_views(session),
    )


def load_rollout_views(session: Session) -> dict[tuple[str, str], RolloutView]:
    """The newest rollout of each release that is not completed (a completed one no
    longer holds its release back, but its stepping stone still holds), with the members
    of the groups each one selects."""
    views: dict[tuple[str, str], RolloutView] = {}
    for row in session.scalars(select(Rollout).order_by(Rollout.seq)):
        key = (row.model, row.build)
        if row.state == COMPLETED and row.stepping_stone is None:
            views.pop(key, None)
            continue
        selection = Selection.from_json(row.selection or {})
        views[key] = RolloutView(
            id=row.id,
            model=row.model,
            build=row.build,
            state=row.state,
            phase=row.phase,
            shares=tuple(int(p["share"]) for p in row.phases),
            selection=selection,
            stepping_stone=row.stepping_stone,
        )
    named = sorted({g for v in views.values() if v.state != COMPLETED for g in v.selection.groups})
    members = group_members(session, named)
    return {
        key: dataclasses.replace(
            view, group_members=frozenset().union(*(members[g] for g in view.selection.groups))
        )
        if view.selection.groups and view.state != COMPLETED
        else view
        for key, view in views.items()
    }


def group_members(session: Session, names: list[str]) -> dict[str, frozenset[str]]:
    """The device ids in each named group (an unknown group has none)."""
    found: dict[str, set[str]] = {name: set() for name in names}
    if names:
        query = select(DeviceGroupMember.group_name, DeviceGroupMember.device_id).where(
            DeviceGroupMember.group_name.in_(names)
        )
        for name, device_id in session.execute(query):
            found[name].add(device_id)
    return {name: frozenset(ids) for name, ids in found.items()}


def amendment_of(row: PolicyAmendment) -> Amendment:
    """The amendment a stored row holds, with its number and both of its times."""
    return Amendment(
        rule_id=row.policy_id,
        effective_from=row.effective_from,
        changes=row.changes,
        note=row.note,
        sequence=row.id,
        recorded_at=aware(row.recorded_at),
        backdated=row.backdated,
        reason=row.reason,
    )


def aware(instant: datetime) -> datetime:
    """A stored instant as an aware UTC datetime (SQLite hands back naive UTC)."""
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)
