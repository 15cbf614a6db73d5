"""hawkBit DDI controllers: devices that run SWUpdate or RAUC and speak hawkBit's API.

A controller is an enrolled device whose id is its hawkBit ``controllerId`` and whose
credential is its target token (only its sha256 is kept, as for every device). An
operator enrolls it (``patchline device enroll-ddi``), with the vouched facts a decision
uses; the token may be one the device already has from a hawkBit server, so moving a
fleet needs no change on the devices but the server's address. What a controller says
about itself later (configData) is kept as attributes: claims, never vouched facts.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from patchline.audit import AuditRecord, append
from patchline.errors import NotFoundError, UsageError
from patchline.fleet.credentials import hash_secret
from patchline.fleet.reconcile import IN_FLIGHT
from patchline.store.models import Device
from patchline.wire.ddi import AttributeMode

#: A controllerId Patchline takes as a device id: what fits its id column and a URL path.
CONTROLLER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_:-]{0,39}$")
#: Shortest target token accepted (hawkBit generates 32 characters).
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class ControllerEnrollment:
    """The controller's id and target token (shown once); whether it existed."""

    controller_id: str
    target_token: str
    re_enrolled: bool


@dataclass(frozen=True)
class ControllerFacts:
    """What an operator vouches for about a controller at enrollment."""

    model: str
    serial: str
    region: str
    deployed_on: date
    build: str
    security_patch_level: date
    hardware_id: str = ""
    carrier: str = ""


def enroll_controller(
    session: Session,
    controller_id: str,
    facts: ControllerFacts,
    now: datetime,
    actor: str,
    target_token: str | None = None,
) -> ControllerEnrollment:
    """Enroll ``controller_id`` with ``facts`` and a target token (``target_token``, e.g.
    the one the device already has, else a new random one); an existing controller gets
    the new token and keeps its facts. Recorded in the audit chain (never the token).

    Raises UsageError for a controllerId or token Patchline cannot take, or a model and
    serial enrolled under another id.
    """
    if not CONTROLLER_ID.match(controller_id):
        raise UsageError(
            f"controllerId {controller_id!r} is not usable",
            hint="1 to 40 letters, digits, '_', ':' and '-', starting with a letter or digit",
        )
    token = target_token if target_token is not None else secrets.token_hex(16)
    if len(token) < MIN_TOKEN_LENGTH or len(token) > 200 or not token.isprintable():
        raise UsageError(f"a target token must be {MIN_TOKEN_LENGTH} to 200 printable characters")
    existing = session.get(Device, controller_id)
    if existing is not None:
        if existing.decommissioned_at is not None:
            raise UsageError(f"device {controller_id} was decommissioned")
        existing.credential_hash = hash_secret(token)
        _audit(session, now, actor, controller_id, facts, re_enrolled=True)
        return ControllerEnrollment(controller_id, token, re_enrolled=True)
    clash = session.query(Device.id).filter_by(model=facts.model, serial=facts.serial).first()
    if clash is not None:
        raise UsageError(
            f"serial {facts.serial} of model {facts.model} is enrolled as device {clash[0]}"
        )
    session.add(
        Device(
            id=controller_id,
            model=facts.model,
            serial=facts.serial,
            hardware_id=facts.hardware_id or controller_id,
            region=facts.region,
            carrier=facts.carrier,
            deployed_on=facts.deployed_on,
            credential_hash=hash_secret(token),
            enrolled_at=now,
            build=facts.build,
            security_patch_level=facts.security_patch_level,
        )
    )
    _audit(session, now, actor, controller_id, facts, re_enrolled=False)
    return ControllerEnrollment(controller_id, token, re_enrolled=False)


def _audit(
    session: Session,
    now: datetime,
    actor: str,
    controller_id: str,
    facts: ControllerFacts,
    *,
    re_enrolled: bool,
) -> None:
    payload: dict[str, Any] = {
        "protocol": "hawkbit-ddi",
        "model": facts.model,
        "serial": facts.serial,
        "region": facts.region,
        "deployed_on": facts.deployed_on.isoformat(),
        "build": facts.build,
        "re_enrolled": re_enrolled,
    }
    append(session, [AuditRecord(now, "enroll", actor, controller_id, payload)])


def record_attributes(
    session: Session,
    device_id: str,
    data: dict[str, str],
    mode: AttributeMode,
    now: datetime,
) -> dict[str, str]:
    """Store what a controller reports about itself (merged, replacing, or removing keys,
    as hawkBit's configData ``mode`` says), audited when they change; the attributes now.

    Raises NotFoundError for an unknown device.
    """
    row = session.get(Device, device_id)
    if row is None:
        raise NotFoundError(f"no device {device_id}")
    before = dict(row.ddi_attributes or {})
    if mode is AttributeMode.REPLACE:
        after = dict(data)
    elif mode is AttributeMode.REMOVE:
        after = {k: v for k, v in before.items() if k not in data}
    else:
        after = {**before, **data}
    if row.ddi_attributes is None or after != before:
        row.ddi_attributes = after
        append(
            session,
            [
                AuditRecord(
                    now,
                    "device-attributes",
                    f"device:{device_id}",
                    device_id,
                    {"attributes": after, "mode": mode.value},
                )
            ],
        )
    return after


#: The install state of an install the server withdrew and the device stopped.
CANCELED = "canceled"


def cancel_install(
    session: Session, device_id: str, target: str, detail: str, now: datetime
) -> bool:
    """Record that the device stopped the install of ``target`` the server withdrew (a
    rule, a yank, a halted rollout): its install state becomes ``canceled``, which no
    rollout counts as a failure, and the audit chain says so. False (nothing changed)
    when that install is not under way on the device."""
    row = session.get(Device, device_id, with_for_update=True)
    if row is None or row.assigned_target != target or row.install_state not in IN_FLIGHT:
        return False
    row.install_state = CANCELED
    row.install_state_at = now
    payload = {"state": CANCELED, "target": target, "build": row.assigned_build, "detail": detail}
    append(session, [AuditRecord(now, "cancel", f"device:{device_id}", device_id, payload)])
    return True
