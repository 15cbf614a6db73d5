"""The console's session cookie and CSRF tokens.

A session is a signed cookie (HMAC-SHA256 with a key kept in the home directory, shared by
every server process on it), ``HttpOnly`` and ``SameSite=Strict``. It holds a random
nonce, the stored form of the management token signed in with (never the token itself)
and when it ends. Every request looks the token up again, so revoking the token ends its
sessions at once. The CSRF token of a form is an HMAC of the session's nonce: a page
from another origin cannot read it, and every POST must carry it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

#: The cookie's name.
COOKIE = "patchline_console"
#: How long a signed-in session lasts.
LIFETIME = timedelta(hours=12)
#: The file in the home directory that keeps the signing key.
KEY_FILE = "console-session.key"


def load_key(home: Path) -> bytes:
    """The session signing key kept in ``home`` (made on first use, readable by the owner
    only); a key for this process alone when the home is not writable."""
    path = home / KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    except OSError:
        return key
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key


@dataclass(frozen=True)
class ConsoleSession:
    """What the cookie says: its nonce, the token's stored form (hex; empty when not
    signed in) and when it ends (epoch seconds)."""

    nonce: str
    token_hash: str = ""
    expires: int = 0

    @staticmethod
    def fresh() -> ConsoleSession:
        """A session that is not signed in."""
        return ConsoleSession(secrets.token_urlsafe(16))

    def signed_in(self, token_hash: bytes, now: datetime) -> ConsoleSession:
        """This visitor signed in: a new nonce (so a token planted before sign-in is
        useless), the token's stored form, and the end of the session."""
        return ConsoleSession(
            secrets.token_urlsafe(16), token_hash.hex(), int((now + LIFETIME).timestamp())
        )

    def live_token_hash(self, now: datetime) -> bytes | None:
        """The stored form of the token signed in with, unless none or the session ended."""
        if not self.token_hash or now.timestamp() >= self.expires:
            return None
        return bytes.fromhex(self.token_hash)


class SessionSigner:
    """Signs and reads session cookies and makes and checks CSRF tokens."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, purpose: str, data: bytes) -> bytes:
        return hmac.new(self._key, purpose.encode() + b"\0" + data, hashlib.sha256).digest()

    def dump(self, session: ConsoleSession) -> str:
        """The cookie value of ``session``."""
        body = json.dumps(
            {"n": session.nonce, "t": session.token_hash, "e": session.expires},
            separators=(",", ":"),
        ).encode()
        return f"{_b64(body)}.{_b64(self._mac('session', body))}"

    def load(self, value: str | None) -> ConsoleSession | None:
        """The session a cookie value holds, or None when it is missing, malformed or not
        signed with this key."""
        if not value or "." not in value:
            return None
        body_b64, mac_b64 = value.split(".", 1)
        try:
            body = _unb64(body_b64)
            mac = _unb64(mac_b64)
            if not hmac.compare_digest(mac, self._mac("session", body)):
                return None
            data = json.loads(body)
            return ConsoleSession(str(data["n"]), str(data["t"]), int(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None

    def csrf_token(self, session: ConsoleSession) -> str:
        """The CSRF token every form of this session carries."""
        return _b64(self._mac("csrf", session.nonce.encode()))

    def csrf_ok(self, session: ConsoleSession, given: str | None) -> bool:
        """Whether ``given`` is this session's CSRF token."""
        return bool(given) and hmac.compare_digest(str(given), self.csrf_token(session))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
