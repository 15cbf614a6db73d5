"""The server knows what really runs: a silent fall-back to the old slot is a rollback."""

from __future__ import annotations

import time

from patchline.wire.device_api import ReportStatus, Slot, SlotState
from tests.server.conftest import RunningServer
from tests.server.test_device_flow import ALLOW_ALL, check_in, enroll, publish_via_repo, report


def state_of(server: RunningServer, device_id: str, expected: str) -> str | None:
    """The device's install state once it is ``expected``, or whatever it is after 5 s:
    check-in writes are batched, so give the writer a moment."""
    for _ in range(100):
        state = server.api().get(f"/api/devices/{device_id}").json()["install_state"]
        if state == expected:
            break
        time.sleep(0.05)
    return str(state)


def test_running_the_assigned_build_counts_as_booted_healthy(server: RunningServer) -> None:
    server.api().post("/api/policies", json=ALLOW_ALL)
    publish_via_repo(server)
    device_id, credential = enroll(server, "R-1")
    check_in(server, credential)
    check_in(server, credential, build="1.1", slot=SlotState(active=Slot.B))
    assert state_of(server, device_id, "booted-healthy") == "booted-healthy"


def test_a_device_back_on_its_old_build_is_recorded_as_rolled_back(server: RunningServer) -> None:
    server.api().post("/api/policies", json=ALLOW_ALL)
    publish_via_repo(server)
    device_id, credential = enroll(server, "R-2")
    check_in(server, credential)
    report(server, credential, ReportStatus.BOOTED_HEALTHY)
    # It never says so, but it is back on 1.0 in slot A.
    check_in(server, credential, build="1.0", slot=SlotState(active=Slot.A, inactive_build="1.1"))
    assert state_of(server, device_id, "rolled-back") == "rolled-back"
    reconcile = [
        entry
        for entry in server.api().get(f"/api/devices/{device_id}").json()["reports"]
        if entry["status"] == "rolled-back"
    ]
    assert reconcile == []  # recorded by the server, not reported: see the audit log
    assert server.api().get("/api/audit/verify").json()["ok"] is True


def test_a_failed_boot_after_install_is_a_rollback(server: RunningServer) -> None:
    server.api().post("/api/policies", json=ALLOW_ALL)
    publish_via_repo(server)
    device_id, credential = enroll(server, "R-3")
    check_in(server, credential)
    report(server, credential, ReportStatus.INSTALLED)
    slot = SlotState(active=Slot.A, inactive_build="1.1", last_boot_ok=False)
    check_in(server, credential, build="1.0", slot=slot)
    assert state_of(server, device_id, "rolled-back") == "rolled-back"
