"""Enrolling a device: its identity row, a fresh credential, and its receipt key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from patchline.errors import PatchlineError
from patchline.fleet.credentials import hash_secret, new_device_id, new_secret
from patchline.store.models import Device
from patchline.wire.device_api import EnrollRequest


class EnrollmentConflictError(PatchlineError):
    """A device with this model and serial is enrolled with other hardware."""


@dataclass(frozen=True)
class Enrollment:
    """The identity handed back to the device; ``secret`` is shown only this once."""

    device_id: str
    secret: str
    re_enrolled: bool

    @property
    def credential(self) -> str:
        """The bearer credential the device presents: ``<device_id>.<secret>``."""
        return f"{self.device_id}.{self.secret}"


def enroll(
    session: Session,
    request: EnrollRequest,
    now: datetime,
    *,
    region: str | None = None,
    deployed_on: date | None = None,
) -> Enrollment:
    """Create the device, or re-issue the credential of the same hardware (factory reset).

    A new device gets the vouched ``region`` and ``deployed_on`` (the enrollment token's
    binding) when given, else the request's; a requested region that differs from the
    vouched one is kept as the device's claimed region, flagged. Re-enrollment changes
    neither (an operator does, through the management API).

    The device's Ed25519 public key (``request.public_key``, which verifies its install
    receipts) is stored, replacing any earlier one at re-enrollment; a request without
    one leaves the device with no key, so its receipts are refused until it enrolls
    with one.

    Raises EnrollmentConflictError when the model and serial belong to other hardware.
    """
    existing = session.scalars(
        select(Device).where(Device.model == request.model, Device.serial == request.serial)
    ).one_or_none()
    secret = new_secret()
    public_key = bytes.fromhex(request.public_key) if request.public_key else None
    if existing is not None:
        if existing.hardware_id != request.hardware_id:
            raise EnrollmentConflictError(
                f"serial {request.serial} of model {request.model} is enrolled with other hardware",
                hint="check the serial; a replaced board must be re-registered by an admin",
            )
        if existing.decommissioned_at is not None:
            raise EnrollmentConflictError(
                f"serial {request.serial} of model {request.model} was decommissioned",
                hint="a decommissioned device cannot enroll again",
            )
        existing.credential_hash = hash_secret(secret)
        existing.public_key = public_key
        return Enrollment(existing.id, secret, re_enrolled=True)
    vouched_region = region or request.region
    device = Device(
        id=new_device_id(),
        model=request.model,
        serial=request.serial,
        hardware_id=request.hardware_id,
        region=vouched_region,
        carrier=request.carrier,
        deployed_on=deployed_on or date.fromisoformat(request.deployed_on),
        claimed_region=request.region,
        region_claim_flagged_at=now if request.region != vouched_region else None,
        credential_hash=hash_secret(secret),
        public_key=public_key,
        enrolled_at=now,
        build=request.build,
        security_patch_level=date.fromisoformat(request.security_patch_level),
    )
    session.add(device)
    return Enrollment(device.id, secret, re_enrolled=False)
