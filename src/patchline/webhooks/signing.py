"""Standard Webhooks signatures: ``v1,`` and the base64 HMAC-SHA256, keyed by the
subscription's ``whsec_`` secret, of ``"{webhook-id}.{webhook-timestamp}.{body}"``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of every signing secret, not a secret


def new_secret() -> str:
    """A new random signing secret (24 bytes), ``whsec_`` and base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def check_secret(secret: str) -> str:
    """``secret`` when it is ``whsec_`` and base64 of 16 to 64 bytes; else ValueError."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a signing secret starts with whsec_")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError:
        raise ValueError("a signing secret is whsec_ and base64") from None
    if not 16 <= len(key) <= 64:
        raise ValueError("a signing secret's key is 16 to 64 bytes")
    return secret


def signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value of a message."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    """Every header a signed message carries."""
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }
