"""Install receipts: what a device installed from an offline bundle, signed by the device.

``POST /v1/receipts`` (Bearer <device credential>) takes a ReceiptBatch and answers a
ReceiptAck. A receipt is signed with the device's own Ed25519 key, made on the device
at enrollment (the private half never leaves it; the public half travels in the
EnrollRequest and the server keeps it per device). The signature covers the receipt's
canonical JSON: msgspec's encoding, fields in the order declared here, no whitespace
(``receipt_bytes``). The server verifies with the stored public key, and the audit
chain keeps the signed text, the signature and the public key, so anyone holding an
audit export can check a receipt without any secret of the server's.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from patchline.wire.device_api import IsoDate, Name, PublicKeyHex, Sha256, ShortText, Uuid

Hex16 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{16}$")]
SignatureHex = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{128}$")]


class Receipt(msgspec.Struct, forbid_unknown_fields=True):
    """One install from an offline bundle that booted healthy."""

    receipt_id: Uuid
    device_id: Name
    bundle_id: Hex16  # the first 16 hex digits of sha256(offline-snapshot.json)
    bundle_version: Annotated[int, msgspec.Meta(ge=0)]
    model: Name
    build: Name
    from_build: Name
    target: ShortText
    sha256: Sha256
    security_patch_level: IsoDate
    installed_at: ShortText  # ISO 8601 instant on the device clock
    delta: bool = False


class SignedReceipt(msgspec.Struct, forbid_unknown_fields=True):
    """A receipt, the id of the device key that signed it, and its Ed25519 signature (hex)."""

    receipt: Receipt
    keyid: Sha256  # key_id() of the signing key's public half
    signature: SignatureHex


class ReceiptBatch(msgspec.Struct, forbid_unknown_fields=True):
    """Receipts kept on the device, sent together (at most 100)."""

    receipts: Annotated[list[SignedReceipt], msgspec.Meta(min_length=1, max_length=100)]


class ReceiptAck(msgspec.Struct):
    """The receipt ids now durable on the server (new or already known)."""

    accepted: list[str]


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The raw 32 bytes of the public half of ``key``."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> PublicKeyHex:
    """The public half of ``key`` as sent at enrollment: 64 lowercase hex digits."""
    return public_key_bytes(key).hex()


def key_id(public_key: bytes) -> str:
    """A device key's id: sha256 of its raw 32-byte public key, hex."""
    return hashlib.sha256(public_key).hexdigest()


def receipt_bytes(receipt: Receipt) -> bytes:
    """What the signature covers: the receipt's canonical JSON (msgspec, declared order)."""
    return msgspec.json.encode(receipt)


def sign(receipt: Receipt, key: Ed25519PrivateKey) -> SignedReceipt:
    """The receipt signed with the device's private key."""
    return SignedReceipt(
        receipt=receipt,
        keyid=key_id(public_key_bytes(key)),
        signature=key.sign(receipt_bytes(receipt)).hex(),
    )


def signature_ok(message: bytes, signature_hex: str, public_key: bytes) -> bool:
    """True when ``signature_hex`` is an Ed25519 signature of ``message`` by ``public_key``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def signed_by(signed: SignedReceipt, public_key: bytes) -> bool:
    """True when ``signed`` names ``public_key``'s id and its signature verifies with it."""
    return signed.keyid == key_id(public_key) and signature_ok(
        receipt_bytes(signed.receipt), signed.signature, public_key
    )
