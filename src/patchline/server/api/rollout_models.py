"""Request and response bodies of ``/api/rollouts``, typed so that /openapi.json
describes every field; what the values mean (shares that grow, a last phase of 100 %)
is checked by ``patchline.fleet.rollouts``, also 422."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from patchline.director.rollout_gate import BUCKETS, Selection
from patchline.fleet.rollouts import Brakes, Phase, RolloutSpec
from patchline.server.api.bodies import IsoDate, Text
from patchline.server.api.schemas import Instant
from patchline.store.models import Rollout, RolloutEvent
from patchline.wire.release import NAME_PATTERN


class PhaseBody(BaseModel):
    """One phase: a share of the selection, its soak time and success criterion."""

    model_config = ConfigDict(extra="forbid")

    percent: StrictFloat | StrictInt = Field(
        gt=0, le=100, description="Share of the selection reached, e.g. 0.1, 1, 10, 50, 100."
    )
    soak_hours: StrictFloat | StrictInt = Field(
        24, ge=0, le=87_600, description="Hours (server clock) before it may move on by itself."
    )
    min_healthy: StrictInt = Field(
        1,
        ge=0,
        le=2**31 - 1,
        description="Devices that must have booted the build healthy to move on.",
    )


class SelectionBody(BaseModel):
    """Which devices of the release's model the rollout may reach; every field given
    must match."""

    model_config = ConfigDict(extra="forbid")

    regions: list[str] = Field(default_factory=list, max_length=200)
    carriers: list[str] = Field(default_factory=list, max_length=200)
    builds: list[str] = Field(default_factory=list, max_length=200)
    patch_level_from: IsoDate | None = None
    patch_level_to: IsoDate | None = None
    deployed_from: IsoDate | None = None
    deployed_to: IsoDate | None = None
    groups: list[str] = Field(
        default_factory=list, max_length=50, description="Named device groups; any matches."
    )
    device_ids: list[str] = Field(default_factory=list, max_length=100_000)


class BrakesBody(BaseModel):
    """Thresholds that halt the rollout by themselves."""

    model_config = ConfigDict(extra="forbid")

    max_failure_rate: StrictFloat | StrictInt = Field(0.05, ge=0, le=1)
    max_rollback_rate: StrictFloat | StrictInt = Field(0.05, ge=0, le=1)
    max_silence_rate: StrictFloat | StrictInt = Field(0.05, ge=0, le=1)
    silence_hours: StrictFloat | StrictInt = Field(24, gt=0, le=87_600)
    min_installs: StrictInt = Field(20, ge=1)


class RolloutBody(BaseModel):
    """A new rollout of build ``build`` of ``model``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(pattern=NAME_PATTERN, max_length=64)
    build: str = Field(max_length=64)
    phases: list[PhaseBody] = Field(min_length=1, max_length=20)
    selection: SelectionBody = Field(default_factory=lambda: SelectionBody())
    brakes: BrakesBody = Field(default_factory=lambda: BrakesBody.model_validate({}))
    stepping_stone: str | None = Field(
        None,
        max_length=64,
        description="A signed build of the model that devices on older builds install first.",
    )

    def spec(self) -> RolloutSpec:
        """The rollout as the fleet service takes it (UsageError on bad values)."""
        s = self.selection
        return RolloutSpec(
            model=self.model,
            build=self.build,
            phases=tuple(
                Phase(
                    share=max(1, round(p.percent * BUCKETS / 100)),
                    soak_seconds=round(p.soak_hours * 3600),
                    min_healthy=p.min_healthy,
                )
                for p in self.phases
            ),
            selection=Selection(
                regions=tuple(s.regions),
                carriers=tuple(s.carriers),
                builds=tuple(s.builds),
                patch_level_from=s.patch_level_from,
                patch_level_to=s.patch_level_to,
                deployed_from=s.deployed_from,
                deployed_to=s.deployed_to,
                groups=tuple(s.groups),
                device_ids=frozenset(s.device_ids),
            ),
            brakes=Brakes(
                max_failure_rate=self.brakes.max_failure_rate,
                max_rollback_rate=self.brakes.max_rollback_rate,
                max_silence_rate=self.brakes.max_silence_rate,
                silence_seconds=round(self.brakes.silence_hours * 3600),
                min_installs=self.brakes.min_installs,
            ),
            stepping_stone=self.stepping_stone,
        )


class ActionBody(BaseModel):
    """Why a person pauses, resumes, aborts or advances a rollout (kept in the audit
    chain)."""

    model_config = ConfigDict(extra="forbid")

    reason: Text = ""


class _Rows(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class RolloutEventOut(_Rows):
    """One change of a rollout: who, when, why, on which figures."""

    at: Instant
    actor: str
    from_state: str | None
    to_state: str
    phase: int = Field(description="0-based index of the phase after the change.")
    reason: str
    figures: dict[str, Any]


class RolloutOut(_Rows):
    """A rollout, with its current phase and the figures of its cohort."""

    id: str
    model: str
    build: str
    target_path: str
    state: str = Field(description="active, paused, halted, aborted or completed.")
    phase: int = Field(description="0-based index of the current phase.")
    phases: list[dict[str, Any]] = Field(description="share (basis points), soak, min_healthy.")
    selection: dict[str, Any]
    brakes: dict[str, Any]
    stepping_stone: str | None = Field(
        description="The build devices on older builds install first, if any."
    )
    phase_started_at: Instant
    created_at: Instant
    created_by: str
    updated_at: Instant
    reason: str = Field(description="Why the last change was made.")
    figures: dict[str, Any] = Field(
        description="The cohort's counts now (show) or at the last change."
    )
    history: list[RolloutEventOut] = Field(default_factory=list)

    @classmethod
    def of(
        cls,
        row: Rollout,
        events: list[RolloutEvent] | None = None,
        figures: dict[str, Any] | None = None,
    ) -> RolloutOut:
        """The body for one stored rollout."""
        out = cls.model_validate(row)
        out.history = [RolloutEventOut.model_validate(e) for e in events or []]
        if figures is not None:
            out.figures = figures
        return out


class CohortOut(BaseModel):
    """The enrolled devices a phase of a rollout reaches."""

    rollout: str
    phase: int
    share: int = Field(description="Basis points (100 = 1 %).")
    device_ids: list[str]
