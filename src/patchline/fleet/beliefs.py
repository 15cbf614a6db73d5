"""What the server believes about a device, apart from what it says on each poll.

The region, deployment date and carrier a decision uses are the ones vouched for: set at
enrollment (from the enrollment token's binding, else the enrollment request) and
changed only by an operator (``change_facts``), each change in the audit chain. Builds
that failed or rolled back on a device are remembered (``failure_of``) and not offered
to it again until an operator retries them (``retry_build``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from patchline.audit import AuditRecord, append
from patchline.errors import NotFoundError, UsageError
from patchline.store.models import Device
from patchline.wire.device_api import ReportCode, ReportStatus

#: Failure codes that say the build itself did not work on the device. Other failures
#: (no source, a download error, no space) say nothing about the build: it is offered again.
_BUILD_FAILURES = {
    ReportCode.HEALTH_CHECK_FAILED: "failed its health check",
    ReportCode.BOOT_FAILED: "failed to boot",
    ReportCode.DEVICE_CORRUPTED: "left the device corrupted",
    ReportCode.INSTALL_FAILED: "failed to install",
}


def failure_of(status: ReportStatus, code: ReportCode) -> str | None:
    """What a report says the build did on the device ("failed to boot"), when it says
    the build does not work there; None for any other report."""
    if status is ReportStatus.ROLLED_BACK:
        return _BUILD_FAILURES.get(code, "failed to boot")
    if status is ReportStatus.FAILED:
        return _BUILD_FAILURES.get(code)
    return None


def with_failure(
    failed: dict[str, Any] | None, build: str, what: str, on: date, status: str, code: str
) -> dict[str, Any]:
    """``failed`` (a device's failed builds) with ``build`` added; the first failure of a
    build is kept."""
    result = dict(failed or {})
    result.setdefault(build, {"on": on.isoformat(), "what": what, "status": status, "code": code})
    return result


def failure_sentence(build: str, what: str, on: str) -> str:
    """The sentence a decision gives for leaving a failed build out: "build 1.1 failed
    to boot on this device on 2026-11-30; not offered again"."""
    return f"build {build} {what} on this device on {on}; not offered again"


def failure_sentences(failed: dict[str, Any] | None) -> dict[str, str]:
    """Build -> ``failure_sentence`` for each of a device's failed builds."""
    return {
        build: failure_sentence(build, entry["what"], entry["on"])
        for build, entry in (failed or {}).items()
    }


def change_facts(
    session: Session,
    device_id: str,
    changes: dict[str, Any],
    reason: str,
    actor: str,
    now: datetime,
) -> Device:
    """Set the device's vouched ``region``, ``deployed_on`` and/or ``carrier`` (keys of
    ``changes``), record each change with its old value, who and why in the audit chain,
    and flag or clear a region claim that now differs from or matches the region.

    Raises NotFoundError for an unknown device, UsageError when nothing would change.
    """
    row = session.get(Device, device_id)
    if row is None:
        raise NotFoundError(f"no device {device_id}")
    changed: dict[str, dict[str, Any]] = {}
    for name in ("region", "deployed_on", "carrier"):
        if name not in changes:
            continue
        value = changes[name]
        if getattr(row, name) != value:
            old = getattr(row, name)
            changed[name] = {"from": _json(old), "to": _json(value)}
            setattr(row, name, value)
    if not changed:
        raise UsageError(f"device {device_id} already has these facts; nothing changed")
    if "region" in changed:
        differs = row.claimed_region is not None and row.claimed_region != row.region
        row.region_claim_flagged_at = now if differs else None
    row.beliefs_changed_at = now
    append(
        session,
        [
            AuditRecord(
                now, "device-facts", actor, device_id, {"changes": changed, "reason": reason}
            )
        ],
    )
    return row


def retry_build(
    session: Session, device_id: str, build: str, reason: str, actor: str, now: datetime
) -> Device:
    """Offer ``build`` to the device again: forget that it failed there, and record the
    retry (with the failure it forgives) in the audit chain.

    Raises NotFoundError for an unknown device or a build that did not fail on it.
    """
    row = session.get(Device, device_id)
    if row is None:
        raise NotFoundError(f"no device {device_id}")
    failed = dict(row.failed_builds or {})
    forgiven = failed.pop(build, None)
    if forgiven is None:
        raise NotFoundError(
            f"build {build} has not failed on device {device_id}",
            hint="GET /api/devices/ID/facts lists the builds that did",
        )
    row.failed_builds = failed or None
    if row.assigned_build == build:
        row.assigned_build = None  # offered afresh: the next decision assigns it again
    row.beliefs_changed_at = now
    append(
        session,
        [
            AuditRecord(
                now,
                "retry",
                actor,
                device_id,
                {"build": build, "failure": forgiven, "reason": reason},
            )
        ],
    )
    return row


def beliefs_json(row: Device) -> dict[str, Any]:
    """What the server believes about the device and what it claimed, as the API shows it."""
    return {
        "id": row.id,
        "region": row.region,
        "deployed_on": row.deployed_on,
        "carrier": row.carrier,
        "claimed_region": row.claimed_region,
        "region_claim_flagged_at": row.region_claim_flagged_at,
        "failed_builds": [
            {"build": build, **entry, "sentence": failure_sentences({build: entry})[build]}
            for build, entry in sorted((row.failed_builds or {}).items())
        ],
        "beliefs_changed_at": row.beliefs_changed_at,
        "claimed_attributes": row.ddi_attributes,
    }


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value
