"""The device's receipt key: sent at enrollment, stored per device, replaced when the same
hardware enrolls again, and recorded in the audit chain's enroll entry."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from patchline.store.db import Database
from patchline.store.models import AuditEntry, Device
from patchline.wire.receipt import key_id, public_key_bytes, public_key_hex
from tests.server.conftest import ENROLLMENT_TOKEN, RunningServer
from tests.server.test_device_flow import enroll


def _stored(server: RunningServer, device_id: str) -> tuple[bytes | None, list[dict[str, object]]]:
    db = Database.connect(server.database_url)
    try:
        with db.transaction() as session:
            key = session.scalar(select(Device.public_key).where(Device.id == device_id))
            enrolls = session.scalars(
                select(AuditEntry.payload)
                .where(AuditEntry.kind == "enroll", AuditEntry.subject == device_id)
                .order_by(AuditEntry.seq)
            ).all()
        return (bytes(key) if key is not None else None), [json.loads(p) for p in enrolls]
    finally:
        db.dispose()


def test_enrollment_stores_the_key_and_re_enrollment_replaces_it(server: RunningServer) -> None:
    first, second = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()

    device_id, _ = enroll(server, "SN-K1", public_key=public_key_hex(first))
    assert _stored(server, device_id)[0] == public_key_bytes(first)
    again, _ = enroll(server, "SN-K1", public_key=public_key_hex(second))
    assert again == device_id
    assert _stored(server, device_id)[0] == public_key_bytes(second)
    enroll(server, "SN-K1")  # an agent without a key: the old key is not kept
    key, entries = _stored(server, device_id)

    assert key is None
    assert [(e["public_key"], e["keyid"]) for e in entries] == [
        (public_key_hex(first), key_id(public_key_bytes(first))),
        (public_key_hex(second), key_id(public_key_bytes(second))),
        (None, None),
    ]


def test_a_malformed_key_is_refused_and_nothing_is_enrolled(server: RunningServer) -> None:
    body = {
        "model": "alpha",
        "serial": "SN-K2",
        "hardware_id": "hw-SN-K2",
        "region": "DE",
        "deployed_on": "2026-01-10",
        "build": "1.0",
        "security_patch_level": "2026-01-01",
    }
    client = server.client(ENROLLMENT_TOKEN)
    for bad in ["AB" * 32, "ab" * 31, "ab" * 33, 42]:
        response = client.post("/v1/enroll", json={**body, "public_key": bad})
        assert response.status_code == 422, bad
        assert "public_key" in response.json()["error"]
    assert server.api().get("/api/devices").json()["total"] == 0
