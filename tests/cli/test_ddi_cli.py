"""``patchline device enroll-ddi`` and ``patchline swu``: controllers enrolled with their
tokens (bad input refused, nothing written), and signed .swu images that Debian's
SWUpdate accepts with the maker's certificate and refuses with any other or tampered."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from patchline.cli.main import main
from patchline.fleet.credentials import hash_secret
from patchline.store.db import Database
from patchline.store.models import AuditEntry, Device

FACTS = [
    "--model", "alpha", "--serial", "SN-1", "--region", "de", "--deployed-on", "2026-01-10",
    "--build", "1.0", "--security-patch-level", "2026-01-01",
]  # fmt: skip


def _enroll(tmp_path: Path, url: str, *args: str) -> int:
    return main(["--home", str(tmp_path), "device", "enroll-ddi", *args, "--database-url", url])


def _counts(url: str) -> tuple[int, int]:
    db = Database.connect(url)
    try:
        with db.engine.connect() as conn:
            devices = conn.execute(select(func.count()).select_from(Device)).scalar_one()
            entries = conn.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
            return devices, entries
    finally:
        db.dispose()


def test_enroll_ddi_takes_the_devices_token_and_refuses_bad_input(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    token = "token-the-device-has-0123456789"
    assert _enroll(tmp_path, database_url, "gw-1", *FACTS, "--token", token) == 0
    db = Database.connect(database_url)
    with db.transaction() as session:
        row = session.get(Device, "gw-1")
        assert row is not None
        assert row.credential_hash == hash_secret(token)
        assert (row.region, row.build, row.model) == ("DE", "1.0", "alpha")
    db.dispose()
    before = _counts(database_url)
    capsys.readouterr()
    for bad in (
        ["bad id!", *FACTS, "--token", token],
        ["gw-2", *FACTS, "--token", "short"],
        ["gw-2", *FACTS, "--token", token],  # model and serial of gw-1
    ):
        assert _enroll(tmp_path, database_url, *bad) != 0
    assert _counts(database_url) == before
    assert _enroll(tmp_path, database_url, "gw-1", *FACTS) == 0  # a new token, printed
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    db = Database.connect(database_url)
    with db.transaction() as session:
        row = session.get(Device, "gw-1")
        assert row is not None
        assert row.credential_hash == hash_secret(printed)
    db.dispose()
