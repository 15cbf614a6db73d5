"""What a device is really running, against what it was assigned.

Applied on every check-in and every report, server-side, with the device's row read
in the same transaction, so that several server processes agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from patchline.wire.device_api import ReportStatus

#: Install states a device moves through after an offer.
OFFERED = "offered"
IN_FLIGHT = {OFFERED, ReportStatus.DOWNLOADING.value, ReportStatus.INSTALLED.value}


@dataclass(frozen=True)
class InstallView:
    """The fields of a device row that reconciliation reads and writes."""

    assigned_build: str | None
    assigned_from_build: str | None
    install_state: str | None


@dataclass(frozen=True)
class Reconciled:
    """The new install state, and a sentence for the audit log when it changed."""

    install_state: str | None
    event: str | None = None


def on_check_in(view: InstallView, running_build: str, last_boot_ok: bool) -> Reconciled:
    """Reconcile an install with the build a device says it runs.

    - running the assigned build after an offer: the install took (booted healthy);
    - back on the old build after it had booted the new one, or after a failed boot:
      rolled back, even if the device never said so.
    """
    state = view.install_state
    if view.assigned_build is None or state is None:
        return Reconciled(state)
    on_new = running_build == view.assigned_build
    if on_new and state in IN_FLIGHT:
        return Reconciled(
            ReportStatus.BOOTED_HEALTHY.value,
            f"device runs assigned build {view.assigned_build}",
        )
    if not on_new and state == ReportStatus.BOOTED_HEALTHY.value:
        return Reconciled(
            ReportStatus.ROLLED_BACK.value,
            f"device was on {view.assigned_build} and is back on {running_build}: rolled back "
            "without reporting it",
        )
    if not on_new and state == ReportStatus.INSTALLED.value and not last_boot_ok:
        return Reconciled(
            ReportStatus.ROLLED_BACK.value,
            f"device installed {view.assigned_build}, failed to boot it and runs "
            f"{running_build}: rolled back",
        )
    return Reconciled(state)


def on_report(view: InstallView, status: ReportStatus, build: str) -> Reconciled:
    """The install state after a report about ``build``; reports about other builds
    (an old install's late report) do not move the current install."""
    if view.assigned_build is not None and build != view.assigned_build:
        return Reconciled(view.install_state)
    return Reconciled(status.value)
