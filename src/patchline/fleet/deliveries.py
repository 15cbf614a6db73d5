"""What the delivery rules delivered: per rule, the devices offered a build it allowed
and how many installed it; and the installs learnt from offline receipts, per release.

Counted by the database (group-by over the devices' ``assigned_rule`` and over the
receipts' partial index), so the answer costs a few rows whatever the fleet's size.

A receipt names no rule: an offline bundle is made from the signed repository, with no
rule consulted (``patchline bundle export``), so which rule "allowed" it cannot be known;
receipts are counted per release (target) instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select, text
from sqlalchemy.orm import Session

from patchline.store.models import RECEIPT_SOURCE, Device, InstallReport
from patchline.wire.device_api import ReportStatus

_INSTALLED = (ReportStatus.INSTALLED.value, ReportStatus.BOOTED_HEALTHY.value)


@dataclass(frozen=True)
class RuleDeliveries:
    """One rule: devices whose assigned build it allowed when last offered, and how many
    of them installed that build (installed, or booted it healthy)."""

    rule_id: str
    offered: int
    installed: int


@dataclass(frozen=True)
class ReceiptDeliveries:
    """One release installed offline: how many devices sent a signed receipt for it, and
    how many receipts."""

    target: str
    devices: int
    receipts: int


def deliveries_by_rule(session: Session) -> list[RuleDeliveries]:
    """Per rule that allowed a device's assigned build (by rule id): devices offered,
    devices installed. Devices offered before rules were recorded per offer are left out."""
    installed = func.sum(case((Device.install_state.in_(_INSTALLED), 1), else_=0))
    query = (
        select(Device.assigned_rule, func.count(), installed)
        .where(Device.assigned_rule.is_not(None))
        .group_by(Device.assigned_rule)
        .order_by(Device.assigned_rule)
    )
    return [
        RuleDeliveries(str(rule), int(offered), int(done or 0))
        for rule, offered, done in session.execute(query)
    ]


def receipts_by_release(session: Session) -> list[ReceiptDeliveries]:
    """Per release (target path): devices and receipts of offline installs."""
    query = (
        select(
            InstallReport.target,
            func.count(func.distinct(InstallReport.device_id)),
            func.count(),
        )
        .where(text(RECEIPT_SOURCE))
        .group_by(InstallReport.target)
        .order_by(InstallReport.target)
    )
    return [
        ReceiptDeliveries(str(target), int(devices), int(receipts))
        for target, devices, receipts in session.execute(query)
    ]
