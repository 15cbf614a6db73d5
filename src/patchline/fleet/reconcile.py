"""What a device is really running, against what it was assigned.

Applied on every check-in and every report, server-side, with the device's row read
in the same transaction, so that several server processes agree.

A build other than the assigned one is told apart by build order
(``patchline.wire.builds``) and by whether the image repository signed it for
the device's model (a row in the releases table):

- older than the assigned build, or the build the install started from: a rollback
  when the device had booted the new build or failed to boot it;
- newer and signed: the device moved forward on its own (a mirror, an SD card); the
  install of the assigned build is superseded, and the server tracks the running build
  as the install, booted healthy;
- any other build the repository has not signed: flagged ``unknown-build``, never a
  rollback.
"""

from __future__ import annotations

from dataclasses import dataclass

from patchline.wire.builds import is_newer_build
from patchline.wire.device_api import ReportStatus

#: Install states a device moves through after an offer.
OFFERED = "offered"
IN_FLIGHT = {OFFERED, ReportStatus.DOWNLOADING.value, ReportStatus.INSTALLED.value}
#: The device runs a build the image repository has not signed for its model.
UNKNOWN_BUILD = "unknown-build"


@dataclass(frozen=True)
class InstallView:
    """The fields of a device row that reconciliation reads and writes."""

    assigned_build: str | None
    assigned_from_build: str | None
    install_state: str | None


@dataclass(frozen=True)
class Reconciled:
    """The new install state, and a sentence for the audit log when it changed.

    ``superseded_by`` is set when the install now concerns another build: the device
    runs a newer signed build than the one assigned, which becomes the assigned build.
    """

    install_state: str | None
    event: str | None = None
    superseded_by: str | None = None


def on_check_in(
    view: InstallView, running_build: str, last_boot_ok: bool, running_signed: bool
) -> Reconciled:
    """Reconcile an install with the build a device says it runs; ``running_signed``
    says whether the image repository signed that build for the device's model.

    - running the assigned build after an offer (or after running an unknown build):
      the install took (booted healthy);
    - running a newer signed build: the install is superseded by it (booted healthy);
    - running a build the repository has not signed, other than the one the install
      started from: flagged ``unknown-build``;
    - back on an older build after it had booted the new one, or after a failed boot:
      rolled back, even if the device never said so.
    """
    state = view.install_state
    assigned = view.assigned_build
    if assigned is None or state is None:
        return Reconciled(state)
    if running_build == assigned:
        if state in IN_FLIGHT or state == UNKNOWN_BUILD:
            return Reconciled(
                ReportStatus.BOOTED_HEALTHY.value, f"device runs assigned build {assigned}"
            )
        return Reconciled(state)
    if running_signed and is_newer_build(running_build, assigned):
        return _superseded(assigned, running_build)
    if not running_signed and running_build != view.assigned_from_build:
        if state == UNKNOWN_BUILD:
            return Reconciled(state)
        return Reconciled(
            UNKNOWN_BUILD,
            f"device runs build {running_build}, which the image repository has not signed "
            f"for its model (assigned build {assigned}): flagged, not a rollback",
        )
    if state == ReportStatus.BOOTED_HEALTHY.value:
        return Reconciled(
            ReportStatus.ROLLED_BACK.value,
            f"device was on {assigned} and is back on {running_build}: rolled back "
            "without reporting it",
        )
    if state == ReportStatus.INSTALLED.value and not last_boot_ok:
        return Reconciled(
            ReportStatus.ROLLED_BACK.value,
            f"device installed {assigned}, failed to boot it and runs {running_build}: rolled back",
        )
    return Reconciled(state)


def on_report(view: InstallView, status: ReportStatus, build: str, signed: bool) -> Reconciled:
    """The install state after a report about ``build`` (``signed``: the repository
    signed it for the device's model). Reports about the assigned build set the state;
    a booted-healthy report of a newer signed build supersedes the install; other
    reports about other builds (an old install's late report) do not move it."""
    assigned = view.assigned_build
    if assigned is None or build == assigned:
        return Reconciled(status.value)
    if (
        status is ReportStatus.BOOTED_HEALTHY
        and view.install_state is not None
        and signed
        and is_newer_build(build, assigned)
    ):
        return _superseded(assigned, build)
    return Reconciled(view.install_state)


def _superseded(assigned: str, running_build: str) -> Reconciled:
    return Reconciled(
        ReportStatus.BOOTED_HEALTHY.value,
        f"device runs build {running_build}, signed and newer than assigned build "
        f"{assigned}, installed from another source: the install of {assigned} is "
        f"superseded; booted healthy on {running_build}",
        superseded_by=running_build,
    )
