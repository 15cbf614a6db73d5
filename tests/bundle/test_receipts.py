"""Offline installs are accounted for: a receipt signed by the device's own key reaches the
server later, lands in the device's history and in the audit chain, once, and an audit
export proves it with nothing but the export; a forged, foreign or unkeyed one is refused."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from patchline.agent import Agent, DeviceDir
from patchline.agent.device_key import KEY_FILE, device_key, load_device_key
from patchline.agent.enrollment import enroll as agent_enroll
from patchline.agent.receipts import ReceiptBox
from patchline.cli.main import main
from patchline.clock import FixedClock
from patchline.errors import SourceUnreachableError
from patchline.repository import Repository
from patchline.repository.bundles import export_bundle
from patchline.store.db import Database
from patchline.store.models import AuditEntry, Device, InstallReport
from patchline.transport.http import http_pool
from patchline.wire.receipt import (
    ReceiptBatch,
    key_id,
    public_key_bytes,
    receipt_bytes,
    sign,
    signed_by,
)
from tests.agent.conftest import closed_port_url
from tests.conftest import START, publish
from tests.server.conftest import ENROLLMENT_TOKEN, RunningServer
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


def _stored_key(server: RunningServer, device_id: str) -> bytes | None:
    db = Database.connect(server.database_url)
    try:
        with db.transaction() as session:
            key = session.scalar(select(Device.public_key).where(Device.id == device_id))
        return bytes(key) if key is not None else None
    finally:
        db.dispose()


def _enrolled_device(
    make_device: Callable[..., DeviceDir], server: RunningServer, serial: str, **config: Any
) -> tuple[DeviceDir, str]:
    """A device enrolled by its agent (which makes its key), then cut off from the server."""
    device = make_device(
        serial, region="DE", deployed_on="2026-01-10", server_url=server.url, **config
    )
    device_id = agent_enroll(
        device, http_pool(2, 10), token=ENROLLMENT_TOKEN, serial=serial, hardware_id=f"hw-{serial}"
    )
    config_now = device.load_config()
    device.save_config(msgspec.structs.replace(config_now, server_url=closed_port_url()))
    return device, device_id


def _reconnect(device: DeviceDir, server: RunningServer) -> None:
    config = device.load_config()
    device.save_config(msgspec.structs.replace(config, server_url=server.url))


def _cli(server: RunningServer, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    os.environ["PATCHLINE_DATABASE_URL"] = server.database_url
    try:
        capsys.readouterr()
        code = main(["--home", str(server.home), *args])
        captured = capsys.readouterr()
        return code, captured.out + captured.err
    finally:
        del os.environ["PATCHLINE_DATABASE_URL"]


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
    device, device_id = _enrolled_device(make_device, server, "SN-R1", bundles=[str(card)])
    key = load_device_key(device)
    assert key is not None
    assert stat.S_IMODE((device.path / KEY_FILE).stat().st_mode) == 0o600
    assert _stored_key(server, device_id) == public_key_bytes(key)
    clock = FixedClock(START + timedelta(days=10))

    assert Agent(device, clock=clock).update().build == "1.1"  # the server is gone
    box = ReceiptBox(device.path / "receipts")
    [(_, signed)] = box.pending()
    assert signed_by(signed, public_key_bytes(key))
    bundle_id = signed.receipt.bundle_id

    _reconnect(device, server)
    Agent(device, clock=clock).send_reports()

    assert box.pending() == []
    credential = device.load_config().credential
    shown = server.api().get(f"/api/devices/{device_id}").json()
    assert shown["build"] == "1.1"
    from_bundle = [r for r in shown["reports"] if r["source"] == f"bundle {bundle_id}"]
    assert [(r["status"], r["build"]) for r in from_bundle] == [("booted-healthy", "1.1")]

    again = server.client(credential).post(
        "/v1/receipts", content=msgspec.json.encode(ReceiptBatch(receipts=[signed]))
    )
    assert again.status_code == 200
    assert again.json()["accepted"] == [signed.receipt.receipt_id]
    reports, receipts = _stored(server)
    assert [r.report_id for r in reports].count(signed.receipt.receipt_id) == 1
    assert len(receipts) == 1
    payload = json.loads(receipts[0].payload)
    assert payload["bundle_id"] == bundle_id
    assert payload["signature"] == signed.signature
    assert payload["public_key"] == public_key_bytes(key).hex()
    assert payload["keyid"] == key_id(public_key_bytes(key)) == signed.keyid
    assert payload["receipt"] == receipt_bytes(signed.receipt).decode()
    assert server.api().get("/api/audit/verify").json()["ok"] is True
    assert _cli(server, capsys, "audit", "verify")[0] == 0

    # A monitor holding nothing but the export checks the receipt against the device key.
    today = datetime.now(UTC).date()
    evidence = tmp_path / "evidence"
    code, out = _cli(
        server,
        capsys,
        "audit",
        "export",
        "--from",
        str(today - timedelta(days=1)),
        "--to",
        str(today + timedelta(days=1)),
        str(evidence),
    )
    assert code == 0, out
    code, out = _cli(server, capsys, "audit", "verify-export", str(evidence))
    assert code == 0, out
    assert "1 offline install receipts signed by their devices" in out


def test_a_forged_or_foreign_receipt_is_refused_and_nothing_is_stored(
    offline_repo: Repository,
    server: RunningServer,
    make_device: Callable[..., DeviceDir],
    tmp_path: Path,
) -> None:
    publish(offline_repo, "alpha", "1.1")
    card = tmp_path / "card"
    export_bundle(offline_repo, "alpha", card)
    device, device_id = _enrolled_device(make_device, server, "SN-R2", bundles=[str(card)])
    other, other_id = _enrolled_device(make_device, server, "SN-R3")
    Agent(device, clock=FixedClock(START)).update()
    [(_, signed)] = ReceiptBox(device.path / "receipts").pending()
    credential = device.load_config().credential
    before = _stored(server)

    edited = msgspec.structs.replace(
        signed, receipt=msgspec.structs.replace(signed.receipt, build="9.9")
    )
    # Signed by a key the server does not hold for this device, under the device's key id.
    made_up = msgspec.structs.replace(
        sign(signed.receipt, Ed25519PrivateKey.generate()), keyid=signed.keyid
    )
    # Signed by another key that names itself.
    other_key = sign(signed.receipt, device_key(other))
    answers = {
        name: server.client(token).post(
            "/v1/receipts", content=msgspec.json.encode(ReceiptBatch(receipts=[receipt]))
        )
        for name, token, receipt in [
            ("edited", credential, edited),
            ("made_up", credential, made_up),
            ("other_key", credential, other_key),
            ("foreign", other.load_config().credential, signed),
            ("one_bad_of_two", credential, signed),
        ]
    }
    both = server.client(credential).post(
        "/v1/receipts", content=msgspec.json.encode(ReceiptBatch(receipts=[signed, edited]))
    )

    for name in ("edited", "made_up", "other_key"):
        assert answers[name].status_code == 422, name
        assert "not signed by this device's key" in answers[name].json()["error"], name
    assert "signature does not verify" in answers["made_up"].json()["error"]
    assert f"names key {other_key.keyid[:16]}" in answers["other_key"].json()["error"]
    assert answers["foreign"].status_code == 422
    assert f"is for device {device_id}, not {other_id}" in answers["foreign"].json()["error"]
    assert both.status_code == 422
    after = _stored(server)
    # Only the genuine receipt, sent alone, was stored.
    assert answers["one_bad_of_two"].status_code == 200
    assert len(after[1]) == 1
    assert before[1] == []
    assert [r.report_id for r in after[0]] == [
        *[r.report_id for r in before[0]],
        signed.receipt.receipt_id,
    ]


def test_a_device_enrolled_without_a_key_is_told_to_re_enroll_then_its_receipts_arrive(
    offline_repo: Repository,
    server: RunningServer,
    make_device: Callable[..., DeviceDir],
    tmp_path: Path,
) -> None:
    publish(offline_repo, "alpha", "1.1")
    card = tmp_path / "card"
    export_bundle(offline_repo, "alpha", card)
    device_id, credential = enroll(server, "SN-R4")  # an agent from before device keys
    assert _stored_key(server, device_id) is None
    device = make_device(
        bundles=[str(card)],
        device_id=device_id,
        credential=credential,
        region="DE",
        deployed_on="2026-01-10",
        server_url=closed_port_url(),
    )
    Agent(device, clock=FixedClock(START)).update()
    box = ReceiptBox(device.path / "receipts")
    [(_, signed)] = box.pending()  # signed with a key made for it, not yet known

    refused = server.client(credential).post(
        "/v1/receipts", content=msgspec.json.encode(ReceiptBatch(receipts=[signed]))
    )
    assert refused.status_code == 422
    assert f"device {device_id} has no receipt key" in refused.json()["error"]
    assert "re-enroll the device" in refused.json()["hint"]
    _reconnect(device, server)
    with pytest.raises(SourceUnreachableError) as told:
        Agent(device, clock=FixedClock(START)).send_reports()
    assert "has no receipt key" in told.value.message
    assert told.value.hint is not None
    assert "patchline agent enroll" in told.value.hint
    assert len(box.pending()) == 1  # kept for later
    assert _stored(server)[1] == []

    again = agent_enroll(
        device, http_pool(2, 10), token=ENROLLMENT_TOKEN, serial="SN-R4", hardware_id="hw-SN-R4"
    )
    assert again == device_id
    key = load_device_key(device)
    assert key is not None
    assert _stored_key(server, device_id) == public_key_bytes(key)
    Agent(device, clock=FixedClock(START)).send_reports()
    assert box.pending() == []
    [entry] = _stored(server)[1]
    assert json.loads(entry.payload)["keyid"] == signed.keyid


def test_a_receipt_sealed_by_an_older_agent_is_signed_with_the_device_key(
    tmp_path: Path,
) -> None:
    key = Ed25519PrivateKey.generate()
    box = ReceiptBox(tmp_path / "receipts", lambda: key)
    fresh = box.add(_receipt(), key)
    receipt = _receipt("1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9")
    old = tmp_path / "receipts" / "00000000000000000001-old.json"
    old.write_bytes(msgspec.json.encode({"receipt": receipt, "mac": "0" * 64}))
    (tmp_path / "receipts" / "00000000000000000002-junk.json").write_text("{")

    assert ReceiptBox(tmp_path / "receipts").pending() == [
        (fresh, msgspec.json.decode(fresh.read_bytes(), type=type(sign(receipt, key))))
    ]
    found = box.pending()

    assert [path for path, _ in found] == [old, fresh]
    assert all(signed_by(signed, public_key_bytes(key)) for _, signed in found)
    assert found[0][1].receipt == receipt
    assert ReceiptBox(tmp_path / "receipts").pending() == found  # rewritten in place


def _receipt(receipt_id: str = "0b9c1f6e-2a57-4d8e-9a51-7d2c3e4f5a6b") -> Any:
    from tests.wire.test_receipt import RECEIPT

    return msgspec.structs.replace(RECEIPT, receipt_id=receipt_id)
