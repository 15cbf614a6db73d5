"""The response bodies of the management API, so that /openapi.json describes every
field. Instants are written as Python writes them (``isoformat``): with the offset
``+00:00`` from PostgreSQL, without one from SQLite, as before they had models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from patchline.director.rules_service import StoredAmendment, StoredRule
from patchline.policy.facts import DeviceFacts
from patchline.store.models import Device, InstallReport

Instant = Annotated[
    datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class _Rows(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ReleaseOut(_Rows):
    """A signed target (full image or delta) as the server knows it."""

    id: int
    target_path: str
    kind: str = Field(description="full or delta.")
    model: str
    build: str
    length: int
    sha256: str
    security_patch_level: date | None
    update_class: str | None
    eligibility: dict[str, Any] = Field(description="The limits signed into the release.")
    source_build: str | None = Field(description="For a delta: the build it starts from.")
    min_battery_percent: int
    allowed_networks: list[str]
    published_at: Instant
    yanked_at: Instant | None
    yank_reason: str | None


class Published(BaseModel):
    """A release just signed and published, with the eligibility signed into it."""

    target_path: str
    sha256: str
    eligibility: dict[str, Any]


class Synced(BaseModel):
    """The targets newly read from the repository."""

    new: list[str]


class DeviceOut(_Rows):
    """An enrolled device: who it is, what it last reported, what it was assigned."""

    id: str
    model: str
    serial: str
    region: str
    carrier: str
    deployed_on: date
    build: str
    security_patch_level: date
    last_seen_at: Instant | None
    slot_active: str | None
    assigned_build: str | None
    install_state: str | None
    install_state_at: Instant | None
    decommissioned_at: Instant | None
    decommission_reason: str | None


class DevicePageOut(BaseModel):
    """One page of the devices matching the filters."""

    total: int = Field(description="How many devices match, on every page.")
    page: int
    page_size: int
    devices: list[DeviceOut]


class InstallReportOut(_Rows):
    """One install report of a device."""

    report_id: str
    build: str
    status: str
    code: str
    detail: str
    source: str
    origin: str = Field(description="device, or server for one the server wrote itself.")
    received_at: Instant


class DeviceDetail(DeviceOut):
    """A device with its latest install reports, newest first."""

    reports: list[InstallReportOut]

    @classmethod
    def of(cls, row: Device, reports: list[InstallReport]) -> DeviceDetail:
        """The device and reports the stored rows hold."""
        shown = DeviceOut.model_validate(row).model_dump()
        return cls(**shown, reports=[InstallReportOut.model_validate(r) for r in reports])


class DecisionOut(BaseModel):
    """What the director would answer."""

    action: str = Field(description="install, wait or none.")
    release: dict[str, Any] | None = Field(description="The release offered, if any.")
    target_path: str | None = Field(description="What to download: the delta or the image.")
    length: int | None
    sha256: str | None
    is_delta: bool
    full_target_path: str | None
    reasons: list[str]
    rule_ids: list[str]


class Explanation(BaseModel):
    """What a device would get on a day, and why, rule by rule."""

    day: date
    device: DeviceFacts = Field(description="The facts the rules were applied to.")
    decision: DecisionOut
    candidates: list[dict[str, Any]] = Field(description="Every release assessed.")
    passed_over: list[dict[str, Any]]
    rules: list[dict[str, Any]] = Field(description="Every rule's state on the day.")
    known_on: date | None
    amendments_recorded_later: list[dict[str, Any]] = Field(
        description="Amendments recorded after ``known_on``, left out of the answer."
    )
    phone_state: str = Field(description="Where battery, network and room were read from.")
    as_of_last_check_in: Instant | None
    rollouts: list[str] = Field(
        default_factory=list,
        description="What the rollouts of the releases the decision looked at say of the "
        "device now (in it, not yet reached, not selected, halted, a stepping stone first), "
        "as the decision at check-in applies them.",
    )
    held_back_by_rollouts: list[str] = Field(
        default_factory=list,
        description="Releases (target paths) those rollouts hold back from the device: "
        "left out of the candidates above.",
    )
    failed_builds: list[str] = Field(
        default_factory=list,
        description="Builds that failed on the device, not offered to it again until an "
        "operator retries them: left out of the candidates above.",
    )


class AmendmentOut(BaseModel):
    """An amendment of a rule, with both of its times."""

    id: int
    label: str
    effective_from: date
    changes: dict[str, Any] = Field(description="The rule fields it changes.")
    note: str
    recorded_at: Instant
    backdated: bool
    reason: str
    summary: str = Field(description="Both times in words, saying so when back-dated.")
    created_at: Instant
    created_by: str

    @classmethod
    def of(cls, stored: StoredAmendment) -> AmendmentOut:
        """The amendment as the API shows it."""
        row, amendment = stored.row, stored.amendment
        shown = {name: getattr(row, name) for name in cls.model_fields if hasattr(row, name)}
        shown.update(
            label=amendment.label, recorded_at=amendment.recorded_at, summary=stored.summary
        )
        return cls.model_validate(shown)


class RuleOut(BaseModel):
    """A delivery rule as first written, with its amendments in order."""

    id: str
    rule: dict[str, Any] = Field(description="The rule as first written (docs/policy.md).")
    created_at: Instant
    created_by: str
    amendments: list[AmendmentOut]

    @classmethod
    def of(cls, stored: StoredRule) -> RuleOut:
        """The rule as the API shows it."""
        row = stored.row
        return cls(
            id=row.id,
            rule=row.body,
            created_at=row.created_at,
            created_by=row.created_by,
            amendments=[AmendmentOut.of(a) for a in stored.amendments],
        )


class AuditVerification(BaseModel):
    """Whether the audit chain is unbroken."""

    ok: bool
    entries: int
    problem: str | None = Field(description="The first break found, if any.")


class TokenOut(_Rows):
    """A token: never its secret nor its hash."""

    name: str
    role: str
    created_at: Instant
    revoked_at: Instant | None


class Revoked(BaseModel):
    """A token just revoked."""

    name: str
    revoked: bool


class FailedBuild(BaseModel):
    """A build that failed on a device and is not offered to it again until retried."""

    build: str
    on: str = Field(description="the day it failed (YYYY-MM-DD)")
    what: str = Field(description='what it did, e.g. "failed to boot"')
    status: str
    code: str
    sentence: str = Field(description="what a decision says of it")


class DeviceBeliefs(BaseModel):
    """What the server believes about a device (decisions use these) and what it claimed."""

    id: str
    region: str
    deployed_on: date | None
    carrier: str | None
    claimed_region: str | None = Field(description="the region its last differing check-in claimed")
    region_claim_flagged_at: Instant | None
    failed_builds: list[FailedBuild]
    beliefs_changed_at: Instant | None
    claimed_attributes: dict[str, str] | None = Field(
        None,
        description="what a hawkBit DDI controller said about itself (configData): claims, "
        "which decisions never read",
    )


class ProposalOut(BaseModel):
    """A change held for a second person (the two-person rule, docs/two-person-rule.md)."""

    id: int
    action: str = Field(description="e.g. rule.create, rule.amend.")
    state: str = Field(description="pending, approved or rejected.")
    summary: str
    payload: dict[str, Any] = Field(description="The change as proposed.")
    proposed_by: str
    proposed_at: str
    decided_by: str | None
    decided_at: str | None
    reason: str
    result: dict[str, Any] | None = Field(description="What applying it stored, once approved.")


class SubscriptionOut(_Rows):
    """A webhook subscription (never its secret)."""

    id: int
    url: str
    events: list[str]
    description: str
    created_at: Instant
    created_by: str


class NewSubscriptionOut(SubscriptionOut):
    """A subscription just added, with its signing secret: shown this once."""

    secret: str


class DeliveryOut(_Rows):
    """One event for one subscription, and how its delivery went."""

    id: int
    message_id: str = Field(description="The webhook-id header: the same on every attempt.")
    subscription_id: int
    event_type: str
    state: str = Field(description="pending, delivered or failed.")
    attempts: int
    last_error: str
    created_at: Instant
    next_attempt_at: Instant
    delivered_at: Instant | None


class Resent(BaseModel):
    """How many messages will be sent again."""

    resent: int
