"""Device credentials: ``<device_id>.<secret>``; the server keeps only sha256(secret)."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_device_id() -> str:
    """A random device id (128 bits, hex)."""
    return secrets.token_hex(16)


def new_secret() -> str:
    """A random credential secret (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> bytes:
    """The stored form of a secret. High-entropy random secrets need no slow hash."""
    return hashlib.sha256(secret.encode()).digest()


def split_credential(header_value: str) -> tuple[str, str] | None:
    """Parse ``Bearer <device_id>.<secret>``; None when it is not of that shape."""
    scheme, _, token = header_value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    device_id, sep, secret = token.strip().partition(".")
    if not sep or not device_id or not secret or len(token) > 200:
        return None
    return device_id, secret


def secret_matches(secret: str, stored_hash: bytes) -> bool:
    """Constant-time comparison of a presented secret with the stored hash."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)
