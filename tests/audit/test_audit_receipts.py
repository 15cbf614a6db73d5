"""A regulator's monitor checks every offline install receipt in an audit export with
nothing but the export: a receipt made up or edited by whoever holds the server and its
audit key (who can re-hash the chain and re-sign the summary) is found."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner

from patchline.audit import (
    AuditRecord,
    append,
    canonical_json,
    entry_hash,
    export,
    verify_export,
)
from patchline.audit.export import ENTRIES_FILE, SUMMARY_FILE
from patchline.cli.main import main
from patchline.errors import AuditExportInvalidError
from patchline.server.receipts import receipt_reports
from patchline.server.writer import report_payload
from patchline.store.db import Database
from patchline.wire.receipt import (
    ReceiptBatch,
    key_id,
    public_key_bytes,
    public_key_hex,
    receipt_bytes,
    sign,
)
from tests.wire.test_receipt import RECEIPT

AT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 10, tzinfo=UTC)
DEVICE_KEY = Ed25519PrivateKey.generate()


def _enroll(key: Ed25519PrivateKey | None) -> AuditRecord:
    public = public_key_hex(key) if key else None
    return AuditRecord(
        at=AT,
        kind="enroll",
        actor="device",
        subject=RECEIPT.device_id,
        payload={
            "model": "alpha",
            "serial": "SN1",
            "re_enrolled": False,
            "public_key": public,
            "keyid": key_id(bytes.fromhex(public)) if public else None,
        },
    )


def _receipt_record(key: Ed25519PrivateKey, at: datetime = AT) -> AuditRecord:
    """A receipt entry exactly as the server writes it (report fields and receipt facts)."""
    batch = ReceiptBatch(receipts=[sign(RECEIPT, key)])
    [report], extra = receipt_reports(batch, public_key_bytes(key))
    return AuditRecord(
        at=at + timedelta(minutes=1),
        kind="receipt",
        actor=f"device:{RECEIPT.device_id}",
        subject=RECEIPT.device_id,
        payload=report_payload(report, extra[report.report_id]),
    )


@pytest.fixture
def signer() -> CryptoSigner:
    return CryptoSigner.generate_ed25519()


@pytest.fixture
def evidence(database_url: str, signer: CryptoSigner, tmp_path: Path) -> Path:
    """An export of a device's enrollment (with its key) and one offline install receipt."""
    db = Database.connect(database_url)
    with db.transaction() as session:
        append(session, [_enroll(DEVICE_KEY), _receipt_record(DEVICE_KEY)])
    out = tmp_path / "evidence"
    export(db, date(2026, 3, 2), date(2026, 3, 2), out, signer, now=NOW)
    db.dispose()
    return out


def _forge(
    out: Path, signer: CryptoSigner, seq: int, edit: Callable[[dict[str, Any]], None]
) -> None:
    """Edit entry ``seq``'s payload, re-hash the chain after it and re-sign the summary,
    as whoever holds the database and the audit key could."""
    lines = [json.loads(raw) for raw in (out / ENTRIES_FILE).read_text().splitlines()]
    prev = None
    for line in lines:
        if line["seq"] == seq:
            payload = json.loads(line["payload"])
            edit(payload)
            line["payload"] = canonical_json(payload)
        if prev is not None:
            line["prev_hash"] = prev
        fields = ("seq", "at", "kind", "actor", "subject", "payload", "prev_hash")
        line["hash"] = entry_hash(*(line[k] for k in fields))
        prev = line["hash"]
    data = "".join(canonical_json(line) + "\n" for line in lines).encode()
    (out / ENTRIES_FILE).write_bytes(data)
    document = json.loads((out / SUMMARY_FILE).read_text())
    signed = document["signed"]
    signed["entries"].update(length=len(data), sha256=hashlib.sha256(data).hexdigest())
    signed["last"]["hash"] = signed["head"]["hash"] = prev
    document["signatures"] = [signer.sign(canonical_json(signed).encode()).to_dict()]
    (out / SUMMARY_FILE).write_text(json.dumps(document, indent=1))


def test_a_genuine_receipt_verifies_from_the_export_alone(evidence: Path) -> None:
    summary = verify_export(evidence)
    assert (summary.count, summary.receipts_verified) == (2, 1)
    [_, line] = [json.loads(raw) for raw in (evidence / ENTRIES_FILE).read_text().splitlines()]
    payload = json.loads(line["payload"])
    assert payload["receipt"] == receipt_bytes(RECEIPT).decode()
    assert payload["public_key"] == public_key_hex(DEVICE_KEY)


def _receipt_says_9_9(payload: dict[str, Any]) -> None:
    payload["build"] = "9.9"
    payload["receipt"] = payload["receipt"].replace('"build":"1.1"', '"build":"9.9"')


def _entry_says_9_9(payload: dict[str, Any]) -> None:
    payload["build"] = "9.9"


def _made_up_by_another_key(payload: dict[str, Any]) -> None:
    forger = Ed25519PrivateKey.generate()
    payload.update(
        signature=sign(RECEIPT, forger).signature,
        public_key=public_key_hex(forger),
        keyid=key_id(public_key_bytes(forger)),
    )


def _sealed_the_old_way(payload: dict[str, Any]) -> None:
    for name in ("receipt", "signature", "public_key", "keyid"):
        del payload[name]
    payload["mac"] = "0" * 64


def _another_device(payload: dict[str, Any]) -> None:
    receipt = msgspec.structs.replace(RECEIPT, device_id="dev-2")
    payload.update(
        receipt=receipt_bytes(receipt).decode(),
        signature=sign(receipt, DEVICE_KEY).signature,
    )


@pytest.mark.parametrize(
    ("edit", "found"),
    [
        (_receipt_says_9_9, "the receipt is not signed by device key"),
        (_entry_says_9_9, "its build ('9.9') is not what the device signed ('1.1')"),
        (_made_up_by_another_key, f"device {RECEIPT.device_id} enrolled with key"),
        (_sealed_the_old_way, "without the device's signature"),
        (_another_device, "the device signed the receipt as dev-2"),
    ],
)
def test_a_forged_or_edited_receipt_in_an_export_is_found(
    evidence: Path,
    signer: CryptoSigner,
    edit: Callable[[dict[str, Any]], None],
    found: str,
) -> None:
    _forge(evidence, signer, 2, edit)
    with pytest.raises(AuditExportInvalidError) as invalid:
        verify_export(evidence, trusted_keyids=frozenset({signer.public_key.keyid}))
    assert "entry 2" in invalid.value.message
    assert found in invalid.value.message


def test_verify_export_exits_22_naming_the_forged_receipt(
    evidence: Path, signer: CryptoSigner, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "verify-export", str(evidence)]) == 0
    assert "1 offline install receipts signed by their devices" in capsys.readouterr().out
    _forge(evidence, signer, 2, _receipt_says_9_9)
    assert main(["audit", "verify-export", str(evidence)]) == 22
    assert "entry 2: the receipt is not signed by device key" in capsys.readouterr().err
