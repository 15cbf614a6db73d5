"""The tables. Domains hold the logic; the schema lives here, in one place, for migrations."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from patchline.store.db import Base


class Stamp(TypeDecorator[datetime]):
    """An instant, stored in UTC and always read back as an aware UTC datetime (SQLite
    keeps no offset, so it hands back naive values; PostgreSQL's ``timestamptz`` gives
    the session's zone): every reader, the API's ISO 8601 output included, gets the
    same kind of value from either database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """An aware instant in UTC; a naive one is taken as UTC already."""
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """The stored instant as an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: The SQL test of an install report that is an offline receipt (its source is "bundle ID").
RECEIPT_SOURCE = "source LIKE 'bundle %'"


class Device(Base):
    """An enrolled device: who it is, what it last reported, what it was assigned."""

    __tablename__ = "devices"
    __table_args__ = (
        UniqueConstraint("model", "serial", name="uq_devices_model_serial"),
        Index("ix_devices_model_region", "model", "region"),
        Index("ix_devices_build", "model", "build"),
        Index("ix_devices_beliefs_changed_at", "beliefs_changed_at"),
        Index("ix_devices_assigned_install", "model", "assigned_build", "install_state"),
        Index("ix_devices_assigned_rule", "assigned_rule", "install_state"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    serial: Mapped[str] = mapped_column(String(256))
    hardware_id: Mapped[str] = mapped_column(String(256))
    region: Mapped[str] = mapped_column(String(16))
    carrier: Mapped[str] = mapped_column(String(256), default="")
    deployed_on: Mapped[date] = mapped_column(Date)
    credential_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    #: The raw Ed25519 public key that signs the device's install receipts (sent at
    #: enrollment; replaced at re-enrollment); None for a device enrolled without one.
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary(32), default=None)
    enrolled_at: Mapped[datetime] = mapped_column(Stamp)
    # What the device reported at its last check-in.
    last_seen_at: Mapped[datetime | None] = mapped_column(Stamp, default=None)
    build: Mapped[str] = mapped_column(String(64))
    build_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    security_patch_level: Mapped[date] = mapped_column(Date)
    slot_active: Mapped[str | None] = mapped_column(String(1), default=None)
    free_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    battery_percent: Mapped[int | None] = mapped_column(Integer, default=None)
    network: Mapped[str | None] = mapped_column(String(16), default=None)
    # What the director last offered, and how the install went.
    assigned_target: Mapped[str | None] = mapped_column(String(256), default=None)
    assigned_build: Mapped[str | None] = mapped_column(String(64), default=None)
    assigned_from_build: Mapped[str | None] = mapped_column(String(64), default=None)
    assigned_at: Mapped[datetime | None] = mapped_column(Stamp, default=None)
    #: The delivery rule that allowed the assigned build when it was last offered.
    assigned_rule: Mapped[str | None] = mapped_column(String(128), default=None)
    install_state: Mapped[str | None] = mapped_column(String(32), default=None)
    install_state_at: Mapped[datetime | None] = mapped_column(Stamp, default=None)
    last_decision: Mapped[str | None] = mapped_column(String(64), default=None)
    # Taken out of service: its credential no longer works and it is offered nothing.
    decommissioned_at: Mapped[datetime | None] = mapped_column(Stamp, default=None)
    decommission_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # What the server believes against what the device says. ``region``, ``carrier`` and
    # ``deployed_on`` above are vouched for (enrollment, an operator); a check-in that
    # claims another region is kept here and flagged, and decisions use the vouched one.
    claimed_region: Mapped[str | None] = mapped_column(String(16), default=None)
    region_claim_flagged_at: Mapped[datetime | None] = mapped_column(Stamp, default=None)
    #: Builds that failed or rolled back on this device, not offered to it again until an
    #: operator retries them: build -> {"on", "what", "status", "code"}.
    failed_builds: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    #: When vouched facts or failed builds last changed: every server process re-reads
    #: such devices.
    beliefs_changed_at: Mapped[datetime | None] = mapped_column(Stamp, default=None)
    #: What a hawkBit DDI controller said about itself through configData (attribute ->
    #: value); None until it has. Claims only: decisions never read them.
    ddi_attributes: Mapped[dict[str, str] | None] = mapped_column(JSON, default=None)


class Release(Base):
    """A signed target of the image repository, as the director sees it."""

    __tablename__ = "releases"
    __table_args__ = (Index("ix_releases_model_build", "model", "build"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target_path: Mapped[str] = mapped_column(String(256), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # full | delta
    model: Mapped[str] = mapped_column(String(64))
    build: Mapped[str] = mapped_column(String(64))
    length: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    security_patch_level: Mapped[date | None] = mapped_column(Date, default=None)
    update_class: Mapped[str | None] = mapped_column(String(16), default=None)
    build_time: Mapped[datetime | None] = mapped_column(Stamp, default=None)
    eligibility: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    notes: Mapped[str] = mapped_column(Text, default="")
    source_build: Mapped[str | None] = mapped_column(String(64), default=None)
    source_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    full_target: Mapped[str | None] = mapped_column(String(256), default=None)
    # Offer settings, editable by a release manager.
    min_battery_percent: Mapped[int] = mapped_column(Integer, default=20)
    allowed_networks: Mapped[list[str]] = mapped_column(JSON, default=list)
    published_at: Mapped[datetime] = mapped_column(Stamp)
    # Withdrawn: the director no longer offers it (devices already on it keep it).
    yanked_at: Mapped[datetime | None] = mapped_column(Stamp, default=None)
    yank_reason: Mapped[str | None] = mapped_column(Text, default=None)


class Policy(Base):
    """A delivery rule, as first written; amendments change it from their dates on."""

    __tablename__ = "policies"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Stamp)
    created_by: Mapped[str] = mapped_column(String(128))


class PolicyAmendment(Base):
    """A change to a rule that takes effect on a date; history is never rewritten.

    Two times: ``effective_from`` (when it changes the rule) and ``recorded_at`` (when it
    was written down, from the server's clock). One effective before the day it was
    recorded is ``backdated``, with the ``reason`` given.
    """

    __tablename__ = "policy_amendments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    policy_id: Mapped[str] = mapped_column(ForeignKey("policies.id"), index=True)
    effective_from: Mapped[date] = mapped_column(Date)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(Stamp)
    created_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(Stamp)
    backdated: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")


class InstallReport(Base):
    """One step of one install as the device reported it; ``report_id`` is idempotent."""

    __tablename__ = "install_reports"
    __table_args__ = (
        Index("ix_reports_device", "device_id", "received_at"),
        # Offline install receipts (stored with the source "bundle ID"), for counting them.
        Index(
            "ix_reports_receipts",
            "target",
            "device_id",
            postgresql_where=text(RECEIPT_SOURCE),
            sqlite_where=text(RECEIPT_SOURCE),
        ),
    )

    report_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    target: Mapped[str] = mapped_column(String(256))
    build: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    code: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(256), default="")
    delta: Mapped[bool] = mapped_column(Boolean, default=False)
    device_at: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(Stamp)
    origin: Mapped[str] = mapped_column(String(16), default="device")  # device | server


class AuditEntry(Base):
    """One link of the hash chain: ``hash = sha256(prev_hash || canonical entry)``."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_at", "at"),
        Index("ix_audit_subject", "subject", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(Stamp)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(String(128))
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's newest link; its row lock serialises appends across processes."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class ApiToken(Base):
    """A management API bearer token; only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(Stamp)
    revoked_at: Mapped[datetime | None] = mapped_column(Stamp, default=None)


class CatalogVersion(Base):
    """Bumped by every change to releases or rules, so each server process knows when to
    reload its cached catalog (one tiny read a second, not one per request)."""

    __tablename__ = "catalog_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class Proposal(Base):
    """A change that needs a second person: stored when proposed, applied when another
    token approves it (the two-person rule), or closed when someone rejects it."""

    __tablename__ = "proposals"
    __table_args__ = (Index("ix_proposals_state", "state", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(64))
    #: What the action needs to be applied, as the direct path would have been given it.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16))  # pending | approved | rejected
    proposed_by: Mapped[str] = mapped_column(String(128))
    proposed_at: Mapped[datetime] = mapped_column(Stamp)
    decided_by: Mapped[str | None] = mapped_column(String(128), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(Stamp, default=None)
    reason: Mapped[str] = mapped_column(Text, default="")
    #: What applying it returned (e.g. the rule as stored), once approved.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class WebhookSubscription(Base):
    """Where to send which events, and the secret that signs them."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)
    #: ``whsec_`` and the base64 key; needed in clear to sign, never shown after creation.
    secret: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(Stamp)
    created_by: Mapped[str] = mapped_column(String(128))
    removed_at: Mapped[datetime | None] = mapped_column(Stamp, default=None)


class WebhookMessage(Base):
    """One event for one subscription (the outbox): written in the transaction of the
    change it reports, delivered at least once by a server process's deliverer."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (Index("ix_webhook_outbox_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: The ``webhook-id`` header: the same on every attempt, so receivers can de-duplicate.
    message_id: Mapped[str] = mapped_column(String(64), index=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id"), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    #: The exact request body, fixed when the event was emitted.
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Stamp)
    state: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: When it is due; while a deliverer holds it, when that claim lapses.
    next_attempt_at: Mapped[datetime] = mapped_column(Stamp)
    last_error: Mapped[str] = mapped_column(Text, default="")
    delivered_at: Mapped[datetime | None] = mapped_column(Stamp, default=None)


class Rollout(Base):
    """A staged rollout of one release to a selection of devices, in phases, with brakes.

    ``phases`` is a list of ``{"share": basis points, "soak_seconds": N, "min_healthy": N}``;
    ``brakes`` holds the thresholds (``patchline.fleet.rollouts.Brakes``); ``figures`` the
    last evaluation's counts. Which devices a phase reaches is computed, never stored
    (``patchline.director.rollout_gate``).
    """

    __tablename__ = "rollouts"
    __table_args__ = (Index("ix_rollouts_release", "model", "build"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    model: Mapped[str] = mapped_column(String(64))
    build: Mapped[str] = mapped_column(String(64))
    target_path: Mapped[str] = mapped_column(String(256))
    selection: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    phases: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    brakes: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    phase: Mapped[int] = mapped_column(Integer, default=0)
    phase_started_at: Mapped[datetime] = mapped_column(Stamp)
    created_at: Mapped[datetime] = mapped_column(Stamp)
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(Stamp)
    reason: Mapped[str] = mapped_column(Text, default="")
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: A build a device on an older one must install before this rollout's build.
    stepping_stone: Mapped[str | None] = mapped_column(String(64), default=None)


class RolloutEvent(Base):
    """One change of a rollout's state or phase: when, by whom, why, on what figures."""

    __tablename__ = "rollout_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rollout_id: Mapped[str] = mapped_column(ForeignKey("rollouts.id"), index=True)
    at: Mapped[datetime] = mapped_column(Stamp)
    actor: Mapped[str] = mapped_column(String(128))
    from_state: Mapped[str | None] = mapped_column(String(16), default=None)
    to_state: Mapped[str] = mapped_column(String(16))
    phase: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class DeviceGroup(Base):
    """A named set of devices that rollouts can select (beta testers, a shop's demo
    phones, a carrier's lab); members in ``device_group_members``."""

    __tablename__ = "device_groups"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(Stamp)
    created_by: Mapped[str] = mapped_column(String(128))


class DeviceGroupMember(Base):
    """One device in one group."""

    __tablename__ = "device_group_members"
    __table_args__ = (Index("ix_device_group_members_device", "device_id"),)

    group_name: Mapped[str] = mapped_column(ForeignKey("device_groups.name"), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(Stamp)


class SupportPromise(Base):
    """Until when the maker promised security updates for a model (e.g. two years after
    launch, or five as the EU Cyber Resilience Act asks); set by an operator, audited."""

    __tablename__ = "support_promises"

    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    security_until: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, default="")
    set_at: Mapped[datetime] = mapped_column(Stamp)
    set_by: Mapped[str] = mapped_column(String(128))


class ReportDay(Base):
    """How many install reports of a status from a kind of source (server, mirror, card)
    the server received on a day (UTC): kept by the writer as it stores reports, so the
    console's per-day charts read a few rows, not every report."""

    __tablename__ = "report_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(8), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
