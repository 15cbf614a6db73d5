"""The batch writer: device state, reports and audit entries, durable in batches.

Request handlers never wait on the database on the common path: they put an operation
on a queue and, when the request must not be acknowledged before it is durable (an
install report, a changed decision), await its future. One thread drains the queue
into one transaction per batch (at most ``max_batch`` operations or ``max_delay``
seconds), reading the devices it touches with a row lock so that several server
processes on one PostgreSQL reconcile and chain the audit log consistently.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session

from patchline.audit import AuditRecord, append
from patchline.fleet.beliefs import failure_of, with_failure
from patchline.fleet.overview import count_reports
from patchline.fleet.reconcile import InstallView, Reconciled, on_check_in, on_report
from patchline.fleet.signed_builds import SignedBuild, SignedBuilds
from patchline.store.db import Database
from patchline.store.models import Device, InstallReport
from patchline.webhooks.events import REPORT_EVENTS
from patchline.webhooks.outbox import Event, emit_many
from patchline.wire.builds import is_newer_build
from patchline.wire.device_api import Report, ReportStatus

log = logging.getLogger(__name__)

ResultFn = Callable[[Any], None]


@dataclass
class Waiter:
    """A future in an event loop, resolved from the writer thread."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]

    def resolve(self, value: Any) -> None:
        """Set the result, unless the request went away."""
        self.loop.call_soon_threadsafe(_set_result, self.future, value)

    def fail(self, exc: BaseException) -> None:
        """Fail the request's future."""
        self.loop.call_soon_threadsafe(_set_exception, self.future, exc)


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


@dataclass
class DecisionChange:
    """A decision to record when it differs from the device's last recorded one."""

    digest: str
    action: str
    target: str | None
    build: str | None
    from_build: str
    reasons: list[str]
    rule_ids: list[str]
    #: The rule that allowed the release offered; None when nothing is offered.
    allowed_by: str | None = None


@dataclass
class CheckInWrite:
    """What one check-in changes: reported facts, and the decision given."""

    device_id: str
    now: datetime
    facts: dict[str, Any]
    last_boot_ok: bool
    decision: DecisionChange
    waiter: Waiter | None = None
    #: The region the check-in claims (None: it claims none), and whether the server
    #: takes a device's claim as its region (``PATCHLINE_TRUST_CLAIMED_REGION``).
    claimed_region: str | None = None
    trust_claim: bool = False


@dataclass
class ReportWrite:
    """A batch of install reports from one device; the waiter gets the accepted ids."""

    device_id: str
    now: datetime
    reports: list[Report]
    waiter: Waiter | None = None
    #: The audit kind of each new report ("receipt" for offline install receipts), and
    #: facts added to its audit payload, by report id.
    audit_kind: str = "report"
    audit_extra: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class AuditWrite:
    """Audit records of management actions."""

    records: list[AuditRecord]
    waiter: Waiter | None = None


Op = CheckInWrite | ReportWrite | AuditWrite


@dataclass
class WriterStats:
    """Counters for metrics and tests."""

    batches: int = 0
    operations: int = 0
    failures: int = 0
    last_error: str = ""
    flush_seconds: list[float] = field(default_factory=list)


class BatchWriter:
    """Owns one thread that turns queued operations into batched transactions."""

    def __init__(self, db: Database, *, max_batch: int = 1000, max_delay: float = 0.02) -> None:
        self._db = db
        self._queue: queue.SimpleQueue[Op | None] = queue.SimpleQueue()
        self._max_batch = max_batch
        self._max_delay = max_delay
        self._thread = threading.Thread(target=self._run, name="patchline-writer", daemon=True)
        self.stats = WriterStats()

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def stop(self) -> None:
        """Flush everything queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def submit(self, op: Op) -> None:
        """Queue an operation (never blocks)."""
        self._queue.put(op)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch: list[Op] = [first]
            deadline = time.monotonic() + self._max_delay
            while len(batch) < self._max_batch:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
                try:
                    op = self._queue.get(timeout=timeout)
                except queue.Empty:
                    break
                if op is None:
                    stopping = True
                    break
                batch.append(op)
            self._flush_safely(batch)

    def _flush_safely(self, batch: list[Op]) -> None:
        started = time.perf_counter()
        try:
            results = self._flush(batch)
        except Exception as exc:  # the database is down or refused the batch
            self.stats.failures += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            log.error("batch of %d operations not written: %s", len(batch), exc)
            for op in batch:
                if op.waiter is not None:
                    op.waiter.fail(exc)
            return
        self.stats.batches += 1
        self.stats.operations += len(batch)
        self.stats.flush_seconds = [*self.stats.flush_seconds[-99:], time.perf_counter() - started]
        for op, result in zip(batch, results, strict=True):
            if op.waiter is not None:
                op.waiter.resolve(result)

    def _flush(self, batch: list[Op]) -> list[Any]:
        with self._db.engine.begin() as conn:
            rows = _lock_devices(conn, batch)
            records: list[AuditRecord] = []
            results: list[Any] = []
            new_reports: list[dict[str, Any]] = []
            known = _known_report_ids(conn, batch)
            signed = SignedBuilds(conn)
            for op in batch:
                if isinstance(op, CheckInWrite):
                    _apply_check_in(op, rows, records, signed)
                    results.append(None)
                elif isinstance(op, ReportWrite):
                    results.append(_apply_reports(op, rows, records, known, new_reports, signed))
                else:
                    records.extend(op.records)
                    results.append(None)
            if new_reports:
                conn.execute(insert(InstallReport), new_reports)
                count_reports(conn, new_reports)
                emit_many(conn, _report_events(new_reports))
            _update_devices(conn, rows)
            if records:
                append(Session(bind=conn), records)
            return results


_ROW_FIELDS = (
    "model",
    "build",
    "build_sha256",
    "security_patch_level",
    "slot_active",
    "assigned_build",
    "assigned_from_build",
    "assigned_target",
    "assigned_at",
    "assigned_rule",
    "install_state",
    "install_state_at",
    "last_decision",
    "region",
    "claimed_region",
    "region_claim_flagged_at",
    "failed_builds",
)


def _lock_devices(conn: Connection, batch: list[Op]) -> dict[str, dict[str, Any]]:
    ids = sorted({op.device_id for op in batch if not isinstance(op, AuditWrite)})
    if not ids:
        return {}
    columns = [getattr(Device, f) for f in _ROW_FIELDS]
    query = select(Device.id, *columns).where(Device.id.in_(ids))
    if conn.dialect.name == "postgresql":
        query = query.order_by(Device.id).with_for_update()
    rows: dict[str, dict[str, Any]] = {}
    for row in conn.execute(query).mappings():
        rows[row["id"]] = {**row, "_dirty": {}}
    return rows


def _known_report_ids(conn: Connection, batch: list[Op]) -> set[str]:
    ids = [r.report_id for op in batch if isinstance(op, ReportWrite) for r in op.reports]
    if not ids:
        return set()
    query = select(InstallReport.report_id).where(InstallReport.report_id.in_(ids))
    return set(conn.scalars(query))


def _report_events(new_reports: list[dict[str, Any]]) -> list[Event]:
    """The webhook events of newly stored reports: how installs ended."""
    return [
        Event(
            REPORT_EVENTS[r["status"]],
            {k: r[k] for k in ("device_id", "report_id", "target", "build", "code", "detail")},
            r["received_at"],
        )
        for r in new_reports
        if r["status"] in REPORT_EVENTS
    ]


def _set(row: dict[str, Any], name: str, value: Any) -> None:
    if row.get(name) != value:
        row[name] = value
        row["_dirty"][name] = value


def _view(row: dict[str, Any]) -> InstallView:
    return InstallView(row["assigned_build"], row["assigned_from_build"], row["install_state"])


def _apply_check_in(
    op: CheckInWrite,
    rows: dict[str, dict[str, Any]],
    records: list[AuditRecord],
    signed: SignedBuilds,
) -> None:
    row = rows.get(op.device_id)
    if row is None:
        return  # the device was deleted meanwhile
    previous_build = row["build"]
    for name, value in op.facts.items():
        _set(row, name, value)
    _apply_region_claim(op, row, records)
    running = row["build"]  # as reported now, or (a poll that reports none) as recorded
    release = None
    if row["assigned_build"] not in (None, running):
        release = signed.get(row["model"], running)
    reconciled = on_check_in(_view(row), running, op.last_boot_ok, release is not None)
    _record_reconciled(op.device_id, op.now, row, reconciled, release, previous_build, records)
    decision = op.decision
    if row["last_decision"] != decision.digest:
        _set(row, "last_decision", decision.digest)
        if decision.action == "install" and decision.build != row["assigned_build"]:
            _set(row, "assigned_build", decision.build)
            _set(row, "assigned_target", decision.target)
            _set(row, "assigned_from_build", decision.from_build)
            _set(row, "assigned_at", op.now)
            _set(row, "install_state", "offered")
            _set(row, "install_state_at", op.now)
        if decision.action == "install" and decision.build == row["assigned_build"]:
            _set(row, "assigned_rule", decision.allowed_by)
        records.append(
            AuditRecord(
                at=op.now,
                kind="decision",
                actor="director",
                subject=op.device_id,
                payload={
                    "action": decision.action,
                    "target": decision.target,
                    "build": decision.build,
                    "running": decision.from_build,
                    "reasons": decision.reasons,
                    "rules": decision.rule_ids,
                    "allowed_by": decision.allowed_by,
                },
            )
        )


def _apply_region_claim(op: CheckInWrite, row: dict[str, Any], records: list[AuditRecord]) -> None:
    """Keep the region the check-in claims; flag (audited once per change of claim) a
    claim that differs from the vouched region, or take it as the region (audited) when
    the server trusts claims."""
    claim = op.claimed_region
    if claim is None or claim == row["claimed_region"]:
        return
    previous = row["claimed_region"]
    _set(row, "claimed_region", claim)
    vouched = row["region"]
    actor = f"device:{op.device_id}"
    if claim != vouched and op.trust_claim:
        _set(row, "region", claim)
        _set(row, "region_claim_flagged_at", None)
        payload = {
            "changes": {"region": {"from": vouched, "to": claim}},
            "reason": "claimed at check-in; this server takes devices' claimed regions",
        }
        records.append(AuditRecord(op.now, "device-facts", actor, op.device_id, payload))
        return
    flagged = claim != vouched
    if not flagged and row["region_claim_flagged_at"] is None:
        return  # agrees, as it did
    _set(row, "region_claim_flagged_at", op.now if flagged else None)
    records.append(
        AuditRecord(
            op.now,
            "region-claim",
            actor,
            op.device_id,
            {"claimed": claim, "previous_claim": previous, "region": vouched, "flagged": flagged},
        )
    )


def _record_failure(
    row: dict[str, Any], build: str | None, what: str, now: datetime, status: str, code: str
) -> None:
    """Remember that ``build`` failed on the device: it is not offered there again."""
    if build is None:
        return
    failed = with_failure(row["failed_builds"], build, what, now.date(), status, code)
    if failed != row["failed_builds"]:
        _set(row, "failed_builds", failed)
        row["_dirty"]["beliefs_changed_at"] = now


def _record_reconciled(
    device_id: str,
    now: datetime,
    row: dict[str, Any],
    reconciled: Reconciled,
    release: SignedBuild | None,
    previous_build: str,
    records: list[AuditRecord],
) -> None:
    """Apply a reconciliation that changed the install to the row, with its audit record."""
    if reconciled.event is None:
        return
    payload: dict[str, Any] = {"state": reconciled.install_state, "event": reconciled.event}
    if reconciled.superseded_by is not None and release is not None:
        payload["build"] = reconciled.superseded_by
        payload["superseded"] = row["assigned_build"]
        _set(row, "assigned_build", reconciled.superseded_by)
        _set(row, "assigned_target", release.target_path)
        _set(row, "assigned_from_build", previous_build)
        _set(row, "assigned_at", now)
    if reconciled.install_state == "rolled-back":
        _record_failure(row, row["assigned_build"], "failed to boot", now, "rolled-back", "none")
    _set(row, "install_state", reconciled.install_state)
    _set(row, "install_state_at", now)
    records.append(
        AuditRecord(at=now, kind="reconcile", actor="server", subject=device_id, payload=payload)
    )


_OTHER_SLOT = {"a": "b", "b": "a"}


def _booted(row: dict[str, Any], build: str, release: SignedBuild | None) -> None:
    """The device booted ``build`` healthy from its other slot: record that it runs it,
    with the signed release's patch level and hash, unless it already runs it or a newer
    build (a late report)."""
    if not is_newer_build(build, row["build"]):
        return
    _set(row, "build", build)
    if row["slot_active"] in _OTHER_SLOT:
        _set(row, "slot_active", _OTHER_SLOT[row["slot_active"]])
    if release is not None:
        _set(row, "build_sha256", release.sha256)
        if release.security_patch_level is not None:
            _set(row, "security_patch_level", release.security_patch_level)


def _apply_reports(
    op: ReportWrite,
    rows: dict[str, dict[str, Any]],
    records: list[AuditRecord],
    known: set[str],
    new_reports: list[dict[str, Any]],
    signed: SignedBuilds,
) -> list[str]:
    row = rows.get(op.device_id)
    accepted = []
    for report in op.reports:
        accepted.append(report.report_id)
        if report.report_id in known or row is None:
            continue  # sent twice: already durable
        known.add(report.report_id)
        new_reports.append(
            {
                "report_id": report.report_id,
                "device_id": op.device_id,
                "target": report.target,
                "build": report.build,
                "status": report.status.value,
                "code": report.code.value,
                "detail": report.detail,
                "source": report.source,
                "delta": report.delta,
                "device_at": report.at,
                "received_at": op.now,
                "origin": "device",
            }
        )
        what = failure_of(report.status, report.code)
        if what is not None:
            _record_failure(row, report.build, what, op.now, report.status.value, report.code.value)
        booted = report.status is ReportStatus.BOOTED_HEALTHY
        release = signed.get(row["model"], report.build) if booted else None
        reconciled = on_report(_view(row), report.status, report.build, release is not None)
        previous_build = row["build"]
        if booted:
            _booted(row, report.build, release)
        if reconciled.event is not None:
            _record_reconciled(
                op.device_id, op.now, row, reconciled, release, previous_build, records
            )
        elif reconciled.install_state != row["install_state"]:
            _set(row, "install_state", reconciled.install_state)
            _set(row, "install_state_at", op.now)
        records.append(
            AuditRecord(
                at=op.now,
                kind=op.audit_kind,
                actor=f"device:{op.device_id}",
                subject=op.device_id,
                payload=report_payload(report, op.audit_extra.get(report.report_id, {})),
            )
        )
    return accepted


def report_payload(report: Report, extra: dict[str, Any]) -> dict[str, Any]:
    """The audit payload of one stored report: its fields, then ``extra`` (a receipt's
    signed facts)."""
    return {
        "report_id": report.report_id,
        "target": report.target,
        "build": report.build,
        "status": report.status.value,
        "code": report.code.value,
        "detail": report.detail,
        "source": report.source,
        "device_at": report.at,
        **extra,
    }


def _update_devices(conn: Connection, rows: dict[str, dict[str, Any]]) -> None:
    # Group devices by the set of columns that changed: one executemany per shape.
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for device_id, row in rows.items():
        dirty = row["_dirty"]
        if dirty:
            key = tuple(sorted(dirty))
            shapes.setdefault(key, []).append(
                {"_id": device_id, **{f"v_{k}": v for k, v in dirty.items()}}
            )
    for columns, params in shapes.items():
        statement = (
            update(Device.__table__)  # type: ignore[arg-type]
            .where(Device.__table__.c.id == bindparam("_id"))
            .values({c: bindparam(f"v_{c}") for c in columns})
        )
        conn.execute(statement, params)


def facts_from_check_in(body: Any) -> dict[str, Any]:
    """The device row fields a check-in reports (its claimed region is not one of them:
    see ``CheckInWrite.claimed_region``)."""
    return {
        "build": body.build,
        "build_sha256": body.build_sha256,
        "security_patch_level": date.fromisoformat(body.security_patch_level),
        "slot_active": body.slot.active.value,
        "free_bytes": body.free_bytes,
        "battery_percent": body.battery_percent,
        "network": body.network.value,
    }
