"""Install receipts are signed by the device's Ed25519 key and verify with its public half
only; any change to the receipt, another key or a bad signature is refused."""

from __future__ import annotations

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from patchline.wire.device_api import EnrollRequest
from patchline.wire.receipt import (
    Receipt,
    ReceiptBatch,
    SignedReceipt,
    key_id,
    public_key_bytes,
    public_key_hex,
    receipt_bytes,
    sign,
    signature_ok,
    signed_by,
)

RECEIPT = Receipt(
    receipt_id="0b9c1f6e-2a57-4d8e-9a51-7d2c3e4f5a6b",
    device_id="dev-1",
    bundle_id="0123456789abcdef",
    bundle_version=1767225600,
    model="alpha",
    build="1.1",
    from_build="1.0",
    target="alpha/1.1/alpha.img",
    sha256="a" * 64,
    security_patch_level="2026-02-01",
    installed_at="2026-03-01T10:00:00Z",
)


def test_a_signed_receipt_verifies_with_the_device_public_key_only() -> None:
    key = Ed25519PrivateKey.generate()
    public = public_key_bytes(key)
    signed = sign(RECEIPT, key)

    assert len(public) == 32
    assert public_key_hex(key) == public.hex() == public_key_hex(key.public_key())
    assert signed.keyid == key_id(public)
    assert len(signed.signature) == 128
    assert signed_by(signed, public)
    assert signature_ok(receipt_bytes(RECEIPT), signed.signature, public)
    assert not signed_by(signed, public_key_bytes(Ed25519PrivateKey.generate()))


@pytest.mark.parametrize(
    "change",
    [
        {"build": "9.9"},
        {"device_id": "dev-2"},
        {"sha256": "b" * 64},
        {"installed_at": "2026-03-02T10:00:00Z"},
        {"delta": True},
    ],
)
def test_any_change_to_a_signed_receipt_is_found(change: dict[str, object]) -> None:
    key = Ed25519PrivateKey.generate()
    signed = sign(RECEIPT, key)
    edited = msgspec.structs.replace(signed, receipt=msgspec.structs.replace(RECEIPT, **change))
    assert not signed_by(edited, public_key_bytes(key))


def test_a_signature_by_another_key_under_the_device_key_id_is_refused() -> None:
    device, forger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    forged = msgspec.structs.replace(sign(RECEIPT, forger), keyid=key_id(public_key_bytes(device)))
    assert not signed_by(forged, public_key_bytes(device))
    assert not signature_ok(b"x", "zz" * 64, public_key_bytes(device))
    assert not signature_ok(b"x", "00" * 64, b"short")


def test_the_signed_bytes_are_msgspec_json_in_declared_order() -> None:
    text = receipt_bytes(RECEIPT).decode()
    assert text.startswith('{"receipt_id":"0b9c1f6e-')
    assert text.endswith('"delta":false}')
    assert msgspec.json.decode(text, type=Receipt) == RECEIPT


def test_the_wire_types_stay_strict() -> None:
    signed = msgspec.to_builtins(sign(RECEIPT, Ed25519PrivateKey.generate()))
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({**signed, "mac": "0" * 64}, SignedReceipt)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({**signed, "signature": "0" * 64}, SignedReceipt)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"receipt": signed["receipt"], "mac": "0" * 64}, SignedReceipt)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"receipts": []}, ReceiptBatch)
    enroll = {
        "model": "alpha",
        "serial": "SN1",
        "hardware_id": "HW1",
        "region": "DE",
        "deployed_on": "2026-01-01",
        "build": "1.0",
        "security_patch_level": "2026-01-01",
    }
    assert msgspec.convert(enroll, EnrollRequest).public_key is None
    assert msgspec.convert({**enroll, "public_key": "ab" * 32}, EnrollRequest).public_key
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({**enroll, "public_key": "AB" * 32}, EnrollRequest)
