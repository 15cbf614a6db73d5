"""The console's session cookie and CSRF tokens, without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from patchline.server.console.session import (
    LIFETIME,
    ConsoleSession,
    SessionSigner,
    load_key,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_a_signed_session_reads_back_and_a_changed_one_does_not() -> None:
    signer = SessionSigner(b"k" * 32)
    session = ConsoleSession.fresh().signed_in(b"\x01" * 32, NOW)
    cookie = signer.dump(session)
    assert signer.load(cookie) == session
    body, mac = cookie.split(".")
    assert signer.load(body[:-2] + "AA." + mac) is None
    assert signer.load(cookie + "x") is None
    assert signer.load("not a cookie") is None
    assert SessionSigner(b"o" * 32).load(cookie) is None


def test_a_session_ends_after_its_lifetime_and_holds_no_token() -> None:
    session = ConsoleSession.fresh().signed_in(b"\x02" * 32, NOW)
    assert session.live_token_hash(NOW + LIFETIME - timedelta(seconds=1)) == b"\x02" * 32
    assert session.live_token_hash(NOW + LIFETIME) is None
    assert ConsoleSession.fresh().live_token_hash(NOW) is None


def test_csrf_tokens_belong_to_one_session_and_change_at_sign_in() -> None:
    signer = SessionSigner(b"k" * 32)
    before = ConsoleSession.fresh()
    after = before.signed_in(b"\x03" * 32, NOW)
    token = signer.csrf_token(before)
    assert signer.csrf_ok(before, token)
    assert not signer.csrf_ok(after, token)
    assert not signer.csrf_ok(before, None)
    assert not signer.csrf_ok(before, "")


def test_the_key_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    key = load_key(tmp_path)
    assert len(key) == 32
    assert load_key(tmp_path) == key
    assert (tmp_path / "console-session.key").stat().st_mode & 0o777 == 0o600
