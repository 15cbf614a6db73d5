"""The server knows what really runs: a silent fall-back to the old slot is a rollback;
a newer signed build installed from elsewhere is not, and a build nobody signed is
flagged."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import select

from patchline.clock import FixedClock, SystemClock
from patchline.store.db import Database
from patchline.store.models import AuditEntry
from patchline.wire.device_api import ReportStatus, Slot, SlotState
from tests.conftest import open_repo, publish
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


def publish_later(server: RunningServer, build: str, spl: str) -> None:
    publish(open_repo(server.home, FixedClock(SystemClock().now())), "alpha", build, spl)
    assert server.api().post("/api/releases/sync").status_code == 200


def reconcile_events(server: RunningServer, device_id: str) -> list[dict[str, Any]]:
    db = Database.connect(server.database_url)
    try:
        with db.transaction() as session:
            payloads = session.scalars(
                select(AuditEntry.payload)
                .where(AuditEntry.kind == "reconcile", AuditEntry.subject == device_id)
                .order_by(AuditEntry.seq)
            )
            return [json.loads(p) for p in payloads]
    finally:
        db.dispose()


def rolled_back_devices(server: RunningServer) -> int:
    listed = server.api().get("/api/devices", params={"install_state": "rolled-back"}).json()
    return int(listed["total"])


def test_a_device_on_a_newer_signed_build_than_assigned_moved_forward_not_back(
    server: RunningServer,
) -> None:
    server.api().post("/api/policies", json=ALLOW_ALL)
    publish_via_repo(server)
    device_id, credential = enroll(server, "R-4")
    check_in(server, credential)
    report(server, credential, ReportStatus.BOOTED_HEALTHY)  # on 1.1, as assigned
    publish_later(server, "1.2", "2026-03-01")
    # Installed from a mirror while the server was away: it says so only by checking in.
    check_in(
        server,
        credential,
        build="1.2",
        spl="2026-03-01",
        slot=SlotState(active=Slot.A, inactive_build="1.1"),
    )
    for _ in range(100):
        device = server.api().get(f"/api/devices/{device_id}").json()
        if device["assigned_build"] == "1.2":
            break
        time.sleep(0.05)
    assert device["install_state"] == "booted-healthy"
    assert (device["build"], device["assigned_build"]) == ("1.2", "1.2")
    assert rolled_back_devices(server) == 0
    events = reconcile_events(server, device_id)
    assert [e["state"] for e in events] == ["booted-healthy"]
    assert (events[0]["build"], events[0]["superseded"]) == ("1.2", "1.1")
    assert "rolled back" not in events[0]["event"]
    assert server.api().get("/api/audit/verify").json()["ok"] is True


def test_a_device_on_a_build_nobody_signed_is_flagged_not_rolled_back(
    server: RunningServer,
) -> None:
    server.api().post("/api/policies", json=ALLOW_ALL)
    publish_via_repo(server)
    device_id, credential = enroll(server, "R-5")
    check_in(server, credential)
    report(server, credential, ReportStatus.BOOTED_HEALTHY)
    check_in(server, credential, build="7.7", slot=SlotState(active=Slot.A))
    assert state_of(server, device_id, "unknown-build") == "unknown-build"
    assert rolled_back_devices(server) == 0
    listed = server.api().get("/api/devices", params={"install_state": "unknown-build"}).json()
    assert [d["id"] for d in listed["devices"]] == [device_id]
    assert [e["state"] for e in reconcile_events(server, device_id)] == ["unknown-build"]


def test_one_booted_healthy_report_records_build_patch_level_and_slot(
    server: RunningServer,
) -> None:
    server.api().post("/api/policies", json=ALLOW_ALL)
    publish_via_repo(server)
    device_id, credential = enroll(server, "R-6")
    check_in(server, credential)  # 1.0, patch level 2026-01-01, slot A
    report(server, credential, ReportStatus.INSTALLED)
    device = server.api().get(f"/api/devices/{device_id}").json()
    assert (device["build"], device["slot_active"]) == ("1.0", "a")  # not booted yet
    report(server, credential, ReportStatus.BOOTED_HEALTHY)
    device = server.api().get(f"/api/devices/{device_id}").json()
    assert device["build"] == "1.1"
    assert device["security_patch_level"] == "2026-02-01"  # from the signed release
    assert device["slot_active"] == "b"  # it booted the slot it installed into
    assert device["install_state"] == "booted-healthy"
