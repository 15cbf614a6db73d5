"""Offline installs are accounted for: a sealed receipt reaches the server later, lands in
the device's history and in the audit chain, once, and a forged one is refused."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import select

from patchline.agent import Agent, DeviceDir
from patchline.agent.receipts import ReceiptBox
from patchline.cli.main import main
from patchline.clock import FixedClock
from patchline.repository import Repository
from patchline.repository.bundles import export_bundle
from patchline.store.db import Database
from patchline.store.models import AuditEntry, InstallReport
from patchline.wire.receipt import ReceiptBatch, SealedReceipt
from tests.agent.conftest import closed_port_url
from tests.conftest import START, publish
from tests.server.conftest import RunningServer
from tests.server.test_device_flow import enroll


def _stored(server: RunningServer) -> tuple[list[InstallReport], list[AuditEntry]]:
    db = Database.connect(server.database_url)
    try:
        with db.transaction() as session:
            reports = list(session.scalars(select(InstallReport)))
            receipts = list(session.scalars(select(AuditEntry).where(AuditEntry.kind == "receipt")))
            session.expunge_all()
        return reports, receipts
    finally:
        db.dispose()


def test_a_receipt_made_offline_reaches_the_server_later_once(
    offline_repo: Repository,
    server: RunningServer,
    make_device: Callable[..., DeviceDir],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publish(offline_repo, "alpha", "1.1", spl="2026-02-01")
    card = tmp_path / "card"
    export_bundle(offline_repo, "alpha", card)
    device_id, credential = enroll(server, "SN-R1")
    device = make_device(
        bundles=[str(card)],
        device_id=device_id,
        credential=credential,
        server_url=closed_port_url(),  # the maker's server is gone
    )
    clock = FixedClock(START + timedelta(days=10))

    assert Agent(device, clock=clock).update().build == "1.1"
    box = ReceiptBox(device.path / "receipts")
    [(_, sealed)] = box.pending()
    bundle_id = sealed.receipt.bundle_id

    config = device.load_config()
    device.save_config(msgspec.structs.replace(config, server_url=server.url))
    Agent(device, clock=clock).send_reports()

    assert box.pending() == []
    shown = server.api().get(f"/api/devices/{device_id}").json()
    assert shown["build"] == "1.1"
    from_bundle = [r for r in shown["reports"] if r["source"] == f"bundle {bundle_id}"]
    assert [(r["status"], r["build"]) for r in from_bundle] == [("booted-healthy", "1.1")]

    again = server.client(credential).post(
        "/v1/receipts", content=msgspec.json.encode(ReceiptBatch(receipts=[sealed]))
    )
    assert again.status_code == 200
    assert again.json()["accepted"] == [sealed.receipt.receipt_id]
    reports, receipts = _stored(server)
    assert [r.report_id for r in reports].count(sealed.receipt.receipt_id) == 1
    assert len(receipts) == 1
    assert bundle_id in receipts[0].payload
    assert sealed.mac in receipts[0].payload
    assert server.api().get("/api/audit/verify").json()["ok"] is True
    os.environ["PATCHLINE_DATABASE_URL"] = server.database_url
    try:
        assert main(["--home", str(server.home), "audit", "verify"]) == 0
    finally:
        del os.environ["PATCHLINE_DATABASE_URL"]


def test_a_forged_or_foreign_receipt_is_refused_and_nothing_is_stored(
    offline_repo: Repository,
    server: RunningServer,
    make_device: Callable[..., DeviceDir],
    tmp_path: Path,
) -> None:
    publish(offline_repo, "alpha", "1.1")
    card = tmp_path / "card"
    export_bundle(offline_repo, "alpha", card)
    device_id, credential = enroll(server, "SN-R2")
    other_id, other_credential = enroll(server, "SN-R3")
    device = make_device(bundles=[str(card)], device_id=device_id, credential=credential)
    Agent(device, clock=FixedClock(START)).update()
    [(_, sealed)] = ReceiptBox(device.path / "receipts").pending()
    before = _stored(server)

    forged = SealedReceipt(
        receipt=msgspec.structs.replace(sealed.receipt, build="9.9"), mac=sealed.mac
    )
    refused = server.client(credential).post(
        "/v1/receipts", content=msgspec.json.encode(ReceiptBatch(receipts=[forged]))
    )
    foreign = server.client(other_credential).post(
        "/v1/receipts", content=msgspec.json.encode(ReceiptBatch(receipts=[sealed]))
    )

    assert refused.status_code == 422
    assert "not sealed by this device" in refused.json()["error"]
    assert foreign.status_code == 422
    after = _stored(server)
    assert [r.report_id for r in after[0]] == [r.report_id for r in before[0]]
    assert after[1] == []
    assert before[1] == []
    assert other_id != device_id
