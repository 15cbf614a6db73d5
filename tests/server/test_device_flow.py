"""End to end on a real port, on SQLite and on PostgreSQL: enroll, check in, verify the
signed decision against the image repository, report, and prove it with audit verify."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from tuf.api.metadata import Metadata, Root
from tuf.ngclient import Updater

from patchline.cli.main import main
from patchline.delta import apply_delta
from patchline.director.identity import director_root_path
from patchline.wire.device_api import (
    CheckIn,
    Network,
    Report,
    ReportBatch,
    ReportStatus,
    Slot,
    SlotState,
)
from patchline.wire.director import Action, agrees_with_image, verify_decision
from tests.conftest import image_bytes, publish
from tests.server.conftest import ENROLLMENT_TOKEN, RunningServer

ALLOW_ALL = {"id": "normal", "title": "Normal operations", "effect": "allow", "priority": 10}


def enroll(server: RunningServer, serial: str, **changes: Any) -> tuple[str, str]:
    body = {
        "model": "alpha",
        "serial": serial,
        "hardware_id": f"hw-{serial}",
        "region": "DE",
        "deployed_on": "2026-01-10",
        "build": "1.0",
        "security_patch_level": "2026-01-01",
        **changes,
    }
    response = server.client(ENROLLMENT_TOKEN).post("/v1/enroll", json=body)
    assert response.status_code == 201, response.text
    data = response.json()
    return data["device_id"], data["credential"]


def check_in(
    server: RunningServer, credential: str, build: str = "1.0", **changes: Any
) -> httpx.Response:
    body = CheckIn(
        build=build,
        build_sha256=hashlib.sha256(image_bytes(f"alpha/{build}")).hexdigest(),
        security_patch_level=changes.pop("spl", "2026-01-01"),
        slot=changes.pop("slot", SlotState(active=Slot.A)),
        free_bytes=changes.pop("free_bytes", 10**9),
        battery_percent=changes.pop("battery", 80),
        network=changes.pop("network", Network.WIFI),
        **changes,
    )
    return server.client(credential).post("/v1/check-in", content=msgspec.json.encode(body))


def report(server: RunningServer, credential: str, status: ReportStatus, build: str = "1.1") -> str:
    report_id = str(uuid.uuid4())
    batch = ReportBatch(
        reports=[
            Report(
                report_id=report_id,
                target=f"alpha/{build}/alpha-{build}.img",
                build=build,
                status=status,
                at=datetime.now(UTC).isoformat(),
                source="server",
            )
        ]
    )
    response = server.client(credential).post("/v1/reports", content=msgspec.json.encode(batch))
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == [report_id]
    return report_id


def director_root(server: RunningServer) -> Root:
    return Metadata[Root].from_bytes(director_root_path(server.home).read_bytes()).signed


def test_enroll_check_in_verify_report_and_audit(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo_root = (server.home / "public" / "metadata" / "1.root.json").read_bytes()
    api = server.api()
    assert api.post("/api/policies", json=ALLOW_ALL).status_code == 201
    publish_via_repo(server)
    device_id, credential = enroll(server, "SN-1")

    response = check_in(server, credential)
    assert response.status_code == 200, response.text
    answer = response.json()
    decision = verify_decision(
        director_root(server),
        answer["director"],
        device_id=device_id,
        now=datetime.now(UTC),
    )
    assert decision.action is Action.INSTALL
    assert decision.target is not None
    # The device runs 1.0 with the exact image a delta was built from: it gets the delta.
    assert decision.target.path == "alpha/1.1/delta-from-1.0.patch"
    assert decision.full_target == "alpha/1.1/alpha-1.1.img"
    assert any("normal" in reason for reason in decision.reasons)
    # Full verification: the image repository, reached through the mirror the answer
    # names, signs the same length and hashes.
    mirror = answer["mirrors"][0]
    (tmp_path / "md").mkdir()
    updater = Updater(
        metadata_dir=str(tmp_path / "md"),
        metadata_base_url=f"{mirror}/metadata/",
        target_base_url=f"{mirror}/targets/",
        target_dir=str(tmp_path),
        bootstrap=repo_root,
    )
    updater.refresh()
    image_target = updater.get_targetinfo(decision.target.path)
    assert image_target is not None
    assert agrees_with_image(decision.target, image_target)
    patch = Path(updater.download_target(image_target))
    running = tmp_path / "slot_a.img"
    running.write_bytes(image_bytes("alpha/1.0"))
    full = updater.get_targetinfo(decision.full_target)
    assert full is not None
    apply_delta(
        running,
        patch,
        tmp_path / "slot_b.img",
        expected_sha256=full.hashes["sha256"],
        expected_length=full.length,
    )
    assert (tmp_path / "slot_b.img").read_bytes() == image_bytes("alpha/1.1")

    for status in (ReportStatus.DOWNLOADING, ReportStatus.INSTALLED, ReportStatus.BOOTED_HEALTHY):
        report(server, credential, status)
    after = check_in(server, credential, build="1.1", spl="2026-01-01")
    assert after.status_code == 200
    none = verify_decision(
        director_root(server), after.json()["director"], device_id=device_id, now=datetime.now(UTC)
    )
    assert none.action is Action.NONE

    device = api.get(f"/api/devices/{device_id}").json()
    assert device["build"] == "1.1"
    assert device["install_state"] == "booted-healthy"
    assert [r["status"] for r in device["reports"]][::-1] == [
        "downloading",
        "installed",
        "booted-healthy",
    ]
    verify_result = api.get("/api/audit/verify").json()
    assert verify_result["ok"] is True
    assert verify_result["entries"] >= 7  # policy, releases, enroll, decisions, reports

    import os

    os.environ["PATCHLINE_DATABASE_URL"] = server.database_url
    try:
        capsys.readouterr()
        assert main(["--home", str(server.home), "audit", "verify"]) == 0
    finally:
        del os.environ["PATCHLINE_DATABASE_URL"]


def publish_via_repo(server: RunningServer) -> None:
    from patchline.clock import FixedClock, SystemClock
    from tests.conftest import open_repo

    repo = open_repo(server.home, FixedClock(SystemClock().now()))
    publish(repo, "alpha", "1.0")
    publish(repo, "alpha", "1.1", "2026-02-01")
    response = server.api().post("/api/releases/sync")
    assert response.status_code == 200, response.text
