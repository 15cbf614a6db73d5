"""Staged rollouts: one release to a selection of devices, in phases, with brakes.

A rollout offers its build to the devices of the current phase's cohort
(``patchline.director.rollout_gate``: a stable bucket per device); the delivery rules
still bound every offer. ``evaluate`` counts the install states of the cohort's devices
for the release and halts the rollout when a brake is crossed (failure, rollback or
silence rate), or moves it to the next phase (or completes it) when the phase has soaked
long enough and enough devices booted it healthy. It runs in a transaction that locks
the rollout's row, so with several server processes a change is taken exactly once.

Every change of state or phase goes through ``transition``: it records a history row and
an audit entry in the caller's transaction and bumps the catalog version so every process
reloads its rollouts.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from patchline.audit import AuditRecord, append
from patchline.director.catalog import aware, group_members
from patchline.director.releases_sync import bump_catalog
from patchline.director.rollout_gate import (
    ABORTED,
    ACTIVE,
    BUCKETS,
    COMPLETED,
    HALTED,
    PAUSED,
    Selection,
    Subject,
    bucket,
    percent,
)
from patchline.director.yank import find_release
from patchline.errors import NotFoundError, RolloutConflictError, UsageError
from patchline.fleet.groups import check_groups_exist
from patchline.store.buckets import bucket_of
from patchline.store.models import Device, Release, Rollout, RolloutEvent
from patchline.webhooks.outbox import emit
from patchline.wire.builds import is_newer_build
from patchline.wire.device_api import ReportStatus

#: Who the audit chain names for changes the server takes by itself.
BRAKES_ACTOR = "server:brakes"
SCHEDULE_ACTOR = "server:schedule"

_INSTALLED = ReportStatus.INSTALLED.value
_HEALTHY = ReportStatus.BOOTED_HEALTHY.value
_ROLLED_BACK = ReportStatus.ROLLED_BACK.value
_FAILED = ReportStatus.FAILED.value
_RESULTS = (_INSTALLED, _HEALTHY, _ROLLED_BACK, _FAILED)


@dataclass(frozen=True)
class Phase:
    """A phase: the share of the selection it reaches (basis points, 100 = 1 %), how long
    it soaks before the next one, and how many devices must boot the build healthy."""

    share: int
    soak_seconds: int = 86_400
    min_healthy: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.share <= BUCKETS:
            raise UsageError(f"a phase's share must be 0.01 % to 100 %, not {self.share} bp")
        if self.soak_seconds < 0 or self.min_healthy < 0:
            raise UsageError("a phase's soak time and minimum healthy count must be >= 0")


@dataclass(frozen=True)
class Brakes:
    """Thresholds that halt a rollout: shares of the cohort's installs that failed, rolled
    back, or went silent (installed, then neither reported a boot nor checked in for
    ``silence_seconds``), looked at once ``min_installs`` devices of the cohort installed."""

    max_failure_rate: float = 0.05
    max_rollback_rate: float = 0.05
    max_silence_rate: float = 0.05
    silence_seconds: int = 86_400
    min_installs: int = 20

    def __post_init__(self) -> None:
        for name in ("max_failure_rate", "max_rollback_rate", "max_silence_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"{name} must be a share between 0 and 1, not {value}")
        if self.silence_seconds < 1 or self.min_installs < 1:
            raise UsageError("silence_seconds and min_installs must be at least 1")


@dataclass(frozen=True)
class RolloutSpec:
    """What a new rollout sends to whom, in which phases, with which brakes."""

    model: str
    build: str
    phases: tuple[Phase, ...]
    selection: Selection = field(default_factory=Selection)
    brakes: Brakes = field(default_factory=Brakes)
    #: A build of the same model that a device on an older build installs first.
    stepping_stone: str | None = None

    def __post_init__(self) -> None:
        if self.stepping_stone is not None and not is_newer_build(self.build, self.stepping_stone):
            raise UsageError(
                f"stepping stone {self.stepping_stone} must be older than build {self.build}"
            )
        shares = [p.share for p in self.phases]
        if not shares:
            raise UsageError("a rollout needs at least one phase")
        if any(b <= a for a, b in itertools.pairwise(shares)):
            raise UsageError(f"phase shares must grow: {', '.join(map(percent, shares))}")
        if shares[-1] != BUCKETS:
            raise UsageError("the last phase must cover 100 % of the selection")


@dataclass(frozen=True)
class Figures:
    """The install states of the current cohort's devices for the rollout's release."""

    offered: int
    installs: int
    healthy: int
    failed: int
    rolled_back: int
    silent: int
    #: Installed, not yet booted, and heard from within the silence window: unsettled.
    pending: int = 0

    def rate(self, count: int) -> float:
        """``count`` as a share of the installs (0 before any)."""
        return count / self.installs if self.installs else 0.0

    def to_json(self) -> dict[str, Any]:
        """The counts and rates as JSON values."""
        return {
            **asdict(self),
            "failure_rate": round(self.rate(self.failed), 4),
            "rollback_rate": round(self.rate(self.rolled_back), 4),
            "silence_rate": round(self.rate(self.silent), 4),
        }


def spec_json(spec: RolloutSpec) -> dict[str, Any]:
    """A rollout's spec as JSON (what a proposal to start one keeps)."""
    return {
        "model": spec.model,
        "build": spec.build,
        "phases": [asdict(p) for p in spec.phases],
        "selection": spec.selection.to_json(),
        "brakes": asdict(spec.brakes),
        "stepping_stone": spec.stepping_stone,
    }


def spec_from_json(data: dict[str, Any]) -> RolloutSpec:
    """The spec ``spec_json`` wrote, checked again."""
    return RolloutSpec(
        model=data["model"],
        build=data["build"],
        phases=tuple(Phase(**p) for p in data["phases"]),
        selection=Selection.from_json(data["selection"]),
        brakes=Brakes(**data["brakes"]),
        stepping_stone=data.get("stepping_stone"),
    )


def brake_crossed(figures: Figures, brakes: Brakes) -> str | None:
    """The sentence naming the first brake the figures cross, or None."""
    if figures.installs < brakes.min_installs:
        return None
    for name, count, limit in (
        ("failure", figures.failed, brakes.max_failure_rate),
        ("rollback", figures.rolled_back, brakes.max_rollback_rate),
        ("silence", figures.silent, brakes.max_silence_rate),
    ):
        if figures.rate(count) > limit:
            return (
                f"{name} rate {figures.rate(count):.1%} ({count} of {figures.installs} "
                f"installs) is above {limit:.1%}"
            )
    return None


def brakes_of(row: Rollout) -> Brakes:
    """The rollout's brakes as stored."""
    return Brakes(**row.brakes)


def phases_of(row: Rollout) -> tuple[Phase, ...]:
    """The rollout's phases as stored."""
    return tuple(Phase(**p) for p in row.phases)


def check_startable(session: Session, spec: RolloutSpec) -> Release:
    """The release ``spec`` would roll out, when a rollout of it may start now: signed,
    not yanked, its stepping stone signed and not yanked, the groups it selects existing,
    and no open rollout of it. NotFoundError or RolloutConflictError else."""
    release = find_release(session, spec.model, spec.build)
    if release.yanked_at is not None:
        raise RolloutConflictError(f"release {release.target_path} is yanked")
    if spec.stepping_stone is not None:
        stone = find_release(session, spec.model, spec.stepping_stone)
        if stone.yanked_at is not None:
            raise RolloutConflictError(f"stepping stone {stone.target_path} is yanked")
    check_groups_exist(session, spec.selection)
    open_ = session.scalars(
        select(Rollout.id).where(
            Rollout.model == spec.model,
            Rollout.build == spec.build,
            Rollout.state.in_((ACTIVE, PAUSED, HALTED)),
        )
    ).first()
    if open_ is not None:
        raise RolloutConflictError(
            f"release {spec.model} {spec.build} is already under rollout {open_}",
            hint=f"abort {open_} first, or widen it",
        )
    return release


def create_rollout(
    session: Session,
    spec: RolloutSpec,
    actor: str,
    now: datetime,
    *,
    approval: dict[str, Any] | None = None,
) -> Rollout:
    """Start a rollout of a signed, not yanked release in its first phase. NotFoundError
    for no such release; RolloutConflictError when the release has an open rollout."""
    release = check_startable(session, spec)
    row = Rollout(
        id=f"pending-{now.timestamp()}",
        model=spec.model,
        build=spec.build,
        target_path=release.target_path,
        selection=spec.selection.to_json(),
        phases=[asdict(p) for p in spec.phases],
        brakes=asdict(spec.brakes),
        state="",
        phase=0,
        phase_started_at=now,
        created_at=now,
        created_by=actor,
        updated_at=now,
        reason="",
        figures={},
        stepping_stone=spec.stepping_stone,
    )
    session.add(row)
    session.flush()
    row.id = f"R-{row.seq}"
    session.flush()
    transition(session, row, ACTIVE, actor, "created", {}, now, approval=approval)
    return row


def list_rollouts(session: Session) -> list[Rollout]:
    """Every rollout, newest first."""
    return list(session.scalars(select(Rollout).order_by(Rollout.seq.desc())))


def get_rollout(session: Session, rollout_id: str, *, lock: bool = False) -> Rollout:
    """One rollout (its row locked until the transaction ends with ``lock``);
    NotFoundError when there is none."""
    query = select(Rollout).where(Rollout.id == rollout_id)
    if lock:
        query = query.with_for_update()
    row = session.scalars(query).first()
    if row is None:
        raise NotFoundError(f"no rollout {rollout_id}", hint="patchline rollout list")
    return row


def history(session: Session, rollout_id: str) -> list[RolloutEvent]:
    """Every change of the rollout, oldest first."""
    query = select(RolloutEvent).where(RolloutEvent.rollout_id == rollout_id)
    return list(session.scalars(query.order_by(RolloutEvent.id)))


def transition(
    session: Session,
    rollout: Rollout,
    new_state: str,
    actor: str,
    reason: str,
    figures: dict[str, Any],
    now: datetime,
    *,
    phase: int | None = None,
    approval: dict[str, Any] | None = None,
) -> None:
    """Move a (locked) rollout to ``new_state`` (and ``phase``), and record it: a history
    row, an audit entry (naming the proposal, proposer and approver when a second person
    let it through), a webhook event, and a catalog bump so every process applies it. The
    one place a rollout's state changes."""
    from_state = rollout.state or None
    rollout.state = new_state
    if phase is not None and phase != rollout.phase:
        rollout.phase = phase
        rollout.phase_started_at = now
    rollout.updated_at = now
    rollout.reason = reason
    if figures:
        rollout.figures = figures
    session.add(
        RolloutEvent(
            rollout_id=rollout.id,
            at=now,
            actor=actor,
            from_state=from_state,
            to_state=new_state,
            phase=rollout.phase,
            reason=reason,
            figures=figures,
        )
    )
    payload: dict[str, Any] = {
        "model": rollout.model,
        "build": rollout.build,
        "from": from_state,
        "to": new_state,
        "phase": rollout.phase + 1,
        "phases": len(rollout.phases),
        "share": percent(int(rollout.phases[rollout.phase]["share"])),
        "reason": reason,
        "figures": figures,
    }
    if approval is not None:
        payload["approval"] = approval
    if from_state is None:
        payload["selection"] = rollout.selection
        payload["phase_plan"] = rollout.phases
        payload["brakes"] = rollout.brakes
        if rollout.stepping_stone is not None:
            payload["stepping_stone"] = rollout.stepping_stone
    append(session, [AuditRecord(now, "rollout", actor, rollout.id, payload)])
    event = _event_of(from_state, new_state, advanced=phase is not None)
    if event is not None:
        emit(session, event, {"rollout": rollout.id, "actor": actor, **payload}, now)
    bump_catalog(session)


def _event_of(from_state: str | None, to_state: str, *, advanced: bool) -> str | None:
    """The webhook event a state change is (``patchline.webhooks.events``)."""
    if from_state is None:
        return "rollout.started"
    if to_state == from_state:
        return "rollout.phase-advanced" if advanced else None
    return {
        HALTED: "rollout.halted",
        PAUSED: "rollout.paused",
        ACTIVE: "rollout.resumed",
        ABORTED: "rollout.aborted",
        COMPLETED: "rollout.completed",
    }.get(to_state)


#: Which states a person may move a rollout from, by action.
_BY_HAND = {
    "pause": ((ACTIVE,), PAUSED),
    "resume": ((PAUSED, HALTED), ACTIVE),
    "abort": ((ACTIVE, PAUSED, HALTED), ABORTED),
    "advance": ((ACTIVE, PAUSED), None),
}


def act(
    session: Session,
    rollout_id: str,
    action: str,
    actor: str,
    reason: str,
    now: datetime,
    *,
    approval: dict[str, Any] | None = None,
) -> Rollout:
    """Pause, resume, abort or advance a rollout by hand (advancing past the last phase
    completes it). RolloutConflictError when its state does not allow the action."""
    if action not in _BY_HAND:
        raise UsageError(f"unknown rollout action {action!r}")
    row = get_rollout(session, rollout_id, lock=True)
    allowed, target = _BY_HAND[action]
    if row.state not in allowed:
        raise RolloutConflictError(
            f"rollout {row.id} is {row.state}: it cannot {action}",
            hint=f"{action} needs a rollout that is {' or '.join(allowed)}",
        )
    figures = cohort_figures(session, row, now).to_json()
    if target is not None:
        transition(session, row, target, actor, reason, figures, now, approval=approval)
    elif row.phase + 1 < len(row.phases):
        transition(
            session,
            row,
            row.state,
            actor,
            reason,
            figures,
            now,
            phase=row.phase + 1,
            approval=approval,
        )
    else:
        transition(session, row, COMPLETED, actor, reason, figures, now, approval=approval)
    return row


def cohort_ids(session: Session, row: Rollout, phase: int | None = None) -> list[str]:
    """The ids of the enrolled devices of the rollout's model in the selection (by id
    list, group, region, carrier and deployment date; build and patch level are checked
    at check-in) whose bucket the phase (default: the current one) covers."""
    share = int(row.phases[row.phase if phase is None else phase]["share"])
    selection = Selection.from_json(row.selection or {})
    members = group_members(session, list(selection.groups))
    in_groups = frozenset().union(*members.values()) if members else frozenset[str]()
    query = select(Device.id, Device.region, Device.carrier, Device.deployed_on).where(
        Device.model == row.model, Device.decommissioned_at.is_(None)
    )
    if selection.device_ids:
        query = query.where(Device.id.in_(sorted(selection.device_ids)))
    return sorted(
        device_id
        for device_id, region, carrier, deployed_on in session.execute(query)
        if bucket(row.id, device_id) < share
        and selection.mismatch(Subject(device_id, region, carrier, deployed_on), in_groups) is None
    )


def _figures_query(row: Rollout, now: datetime, *, installs_only: bool) -> Select[Any]:
    """(install state, silent, count) rows of the rollout's current cohort,
    grouped by the database (see ``cohort_figures``)."""
    brakes = brakes_of(row)
    share = int(row.phases[row.phase]["share"])
    quiet_since = (now - timedelta(seconds=brakes.silence_seconds)).astimezone(UTC)
    silent = and_(
        Device.install_state == _INSTALLED,
        or_(Device.last_seen_at.is_(None), Device.last_seen_at < quiet_since),
    )
    is_silent = case((silent, 1), else_=0)
    query = select(Device.install_state, is_silent, func.count())
    query = query.where(Device.model == row.model, Device.assigned_build == row.build)
    if installs_only:
        query = query.where(Device.install_state.in_(_RESULTS))
    if share < BUCKETS:
        query = query.where(bucket_of(row.id, Device.id) < share)
    return query.group_by(Device.install_state, is_silent)


def _figures(counts: Iterable[tuple[str | None, bool, int]]) -> Figures:
    """Figures from (install state, silent, count) rows."""
    by_state: dict[tuple[str | None, bool], int] = {}
    for state, quiet, count in counts:
        by_state[(state, bool(quiet))] = by_state.get((state, bool(quiet)), 0) + int(count)

    def counted(state: str, quiet: bool | None = None) -> int:
        return sum(n for (s, q), n in by_state.items() if s == state and quiet in (None, q))

    return Figures(
        offered=sum(by_state.values()),
        installs=sum(counted(state) for state in _RESULTS),
        healthy=counted(_HEALTHY),
        failed=counted(_FAILED),
        rolled_back=counted(_ROLLED_BACK),
        silent=counted(_INSTALLED, True),
        pending=counted(_INSTALLED, False),
    )


#: The figures of a rollout no device reported installing.
_NONE = Figures(offered=0, installs=0, healthy=0, failed=0, rolled_back=0, silent=0)


def cohort_figures(
    session: Session, row: Rollout, now: datetime, *, installs_only: bool = False
) -> Figures:
    """Count the install states, for the rollout's release, of the devices the current
    phase covers that were offered it. The database counts: it computes each device's
    bucket (``patchline.store.buckets``) and groups by install state and silence, so a
    few rows come back whatever the cohort's size. With ``installs_only`` it looks only at
    devices that reported an install (what a brake or a phase step needs: every figure
    but ``offered``, which is then the installs)."""
    rows = session.execute(_figures_query(row, now, installs_only=installs_only))
    return _figures(rows.tuples())


def _next_step(row: Rollout, figures: Figures, now: datetime) -> tuple[str, str] | None:
    """What an active rollout's figures call for: (new state, reason), or None."""
    crossed = brake_crossed(figures, brakes_of(row))
    if crossed is not None:
        return HALTED, crossed
    phase = phases_of(row)[row.phase]
    soaked = now - aware(row.phase_started_at) >= timedelta(seconds=phase.soak_seconds)
    if not soaked or figures.healthy < phase.min_healthy or figures.pending:
        return None
    reason = (
        f"phase {row.phase + 1} soaked {phase.soak_seconds} s with {figures.healthy} devices "
        f"healthy and no brake crossed"
    )
    return (ACTIVE if row.phase + 1 < len(row.phases) else COMPLETED), reason


def due(session: Session, now: datetime) -> list[str]:
    """The active rollouts whose figures now call for a change (a brake crossed, a phase
    soaked), read without locks; ``evaluate`` looks again under the lock."""
    # Only installs count towards a step (a brake's rates, healthy, pending; the cohort's
    # size does not), so devices offered the build that have not installed it are not
    # read, and a rollout no device reported installing is not counted at all: one small
    # query finds those with installs (an index probe each), then each of them is counted.
    # The brakes look at every active rollout each second: at 100 rollouts a count each
    # cost 100-200 ms of this process's CPU a second.
    installed = (
        select(Device.id)
        .where(
            Device.model == Rollout.model,
            Device.assigned_build == Rollout.build,
            Device.install_state.in_(_RESULTS),
        )
        .exists()
    )
    rows = session.execute(select(Rollout, installed).where(Rollout.state == ACTIVE)).all()
    return [
        row.id
        for row, any_installs in rows
        if _next_step(
            row,
            cohort_figures(session, row, now, installs_only=True) if any_installs else _NONE,
            now,
        )
        is not None
    ]


def evaluate(session: Session, rollout_id: str, now: datetime) -> str | None:
    """Look at an active rollout's figures with its row locked: halt it when a brake is
    crossed, else advance (or complete) it when its phase soaked and enough devices booted
    healthy. Returns the new state ("halted", "active" for a new phase, "completed") when
    this transaction changed it, else None (another process got there first, or nothing
    to do)."""
    row = get_rollout(session, rollout_id, lock=True)
    if row.state != ACTIVE:
        return None
    figures = cohort_figures(session, row, now)
    step = _next_step(row, figures, now)
    if step is None:
        return None
    state, reason = step
    actor = BRAKES_ACTOR if state == HALTED else SCHEDULE_ACTOR
    phase = row.phase + 1 if state == ACTIVE else None
    transition(session, row, state, actor, reason, figures.to_json(), now, phase=phase)
    return state
