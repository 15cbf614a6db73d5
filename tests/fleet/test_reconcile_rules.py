"""Assigned against running: a rollback, a device that moved forward on its own, and a
build nobody signed are three different things."""

from __future__ import annotations

from patchline.fleet.reconcile import UNKNOWN_BUILD, InstallView, on_check_in, on_report
from patchline.wire.device_api import ReportStatus

HEALTHY = ReportStatus.BOOTED_HEALTHY.value
ROLLED_BACK = ReportStatus.ROLLED_BACK.value
ON_1_1 = InstallView(assigned_build="1.1", assigned_from_build="1.0", install_state=HEALTHY)


def test_a_newer_signed_build_than_assigned_supersedes_the_install() -> None:
    reconciled = on_check_in(ON_1_1, "1.2", last_boot_ok=True, running_signed=True)
    assert reconciled.install_state == HEALTHY
    assert reconciled.superseded_by == "1.2"
    assert reconciled.event is not None
    assert "superseded" in reconciled.event
    assert "rolled back" not in reconciled.event


def test_build_order_is_natural_not_textual() -> None:
    view = InstallView("1.9", "1.8", HEALTHY)
    assert on_check_in(view, "1.10", True, True).superseded_by == "1.10"
    assert on_check_in(view, "1.8", True, True).install_state == ROLLED_BACK


def test_an_offered_install_overtaken_by_a_newer_signed_build_is_superseded() -> None:
    view = InstallView("1.1", "1.0", "offered")
    reconciled = on_check_in(view, "1.2", last_boot_ok=True, running_signed=True)
    assert (reconciled.install_state, reconciled.superseded_by) == (HEALTHY, "1.2")


def test_a_newer_build_nobody_signed_is_flagged_not_a_rollback() -> None:
    reconciled = on_check_in(ON_1_1, "1.2", last_boot_ok=True, running_signed=False)
    assert reconciled.install_state == UNKNOWN_BUILD
    assert reconciled.superseded_by is None
    assert reconciled.event is not None
    assert "not signed" in reconciled.event
    flagged = InstallView("1.1", "1.0", UNKNOWN_BUILD)
    assert on_check_in(flagged, "1.2", True, False).event is None  # flagged once
    back = on_check_in(flagged, "1.1", True, False)
    assert (back.install_state, back.event) == (HEALTHY, "device runs assigned build 1.1")


def test_back_on_the_old_build_after_booting_the_new_one_is_still_a_rollback() -> None:
    for signed in (True, False):  # a factory build need not be a signed release
        reconciled = on_check_in(ON_1_1, "1.0", last_boot_ok=True, running_signed=signed)
        assert reconciled.install_state == ROLLED_BACK
        assert reconciled.event is not None
        assert "rolled back" in reconciled.event


def test_an_older_signed_build_after_booting_the_new_one_is_a_rollback() -> None:
    view = InstallView("1.2", "1.1", HEALTHY)
    assert on_check_in(view, "1.0", True, True).install_state == ROLLED_BACK


def test_a_failed_boot_back_on_the_from_build_is_a_rollback() -> None:
    view = InstallView("1.1", "1.0", ReportStatus.INSTALLED.value)
    assert on_check_in(view, "1.0", False, True).install_state == ROLLED_BACK
    assert on_check_in(view, "1.0", True, True).install_state == ReportStatus.INSTALLED.value


def test_still_on_the_unsigned_from_build_while_offered_is_not_flagged() -> None:
    view = InstallView("1.1", "0.9-factory", "offered")
    assert on_check_in(view, "0.9-factory", True, False).install_state == "offered"


def test_a_booted_healthy_report_of_a_newer_signed_build_supersedes_the_install() -> None:
    reconciled = on_report(ON_1_1, ReportStatus.BOOTED_HEALTHY, "1.2", signed=True)
    assert (reconciled.install_state, reconciled.superseded_by) == (HEALTHY, "1.2")
    assert on_report(ON_1_1, ReportStatus.BOOTED_HEALTHY, "1.2", signed=False).event is None
    late = on_report(ON_1_1, ReportStatus.BOOTED_HEALTHY, "1.0", signed=True)
    assert (late.install_state, late.event) == (HEALTHY, None)
    installed = on_report(ON_1_1, ReportStatus.INSTALLED, "1.2", signed=True)
    assert (installed.install_state, installed.event) == (HEALTHY, None)
