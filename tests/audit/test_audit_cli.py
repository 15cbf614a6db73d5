"""``patchline audit verify|export|verify-export``: exit codes and what they print."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from patchline.audit import AUDIT_ROLE
from patchline.cli.main import main
from patchline.repository import Repository
from patchline.store.db import Database, default_url
from patchline.store.migrate import upgrade
from tests.audit.test_audit_chain import T0, fill


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_verify_prints_count_and_head_then_fails_at_the_tampered_entry(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = Database.connect(database_url)
    fill(db, 5)
    code, out = run(capsys, "audit", "verify", "--database-url", database_url)
    assert code == 0, out
    assert "5 entries" in out
    with db.transaction() as session:
        head = session.execute(text("SELECT hash FROM audit_head")).scalar_one()
    assert head in out
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_entries SET subject = 'other' WHERE seq = 3"))
    db.dispose()
    code, out = run(capsys, "audit", "verify", "--database-url", database_url)
    assert code == 21
    assert "broken at entry 3 (hash_mismatch)" in out


def test_export_signs_with_the_repository_audit_key_and_verify_export_checks_it(
    repo: Repository, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = Database.connect(database_url)
    fill(db, 6, step=timedelta(hours=12))  # March 1 and 2, then 3 and 4
    db.dispose()
    home = str(repo.layout.home)
    out_dir = tmp_path / "evidence"
    args = ("--home", home, "audit", "export", "--database-url", database_url)
    code, out = run(capsys, *args, "--from", "2026-03-02", "--to", "2026-03-03", str(out_dir))
    assert code == 0, out
    assert "Exported 4 entries (seq 2..5)" in out
    audit_keys = [
        e for e in Repository.open(repo.layout.home).keyring.entries() if e.role == AUDIT_ROLE
    ]
    assert len(audit_keys) == 1
    code, out = run(capsys, *args, "--from", "2026-03-01", "--to", "2026-03-01", str(out_dir))
    assert code == 0, out
    audit_keys_again = [
        e for e in Repository.open(repo.layout.home).keyring.entries() if e.role == AUDIT_ROLE
    ]
    assert audit_keys_again == audit_keys  # the key is made once, then reused
    code, out = run(
        capsys, "audit", "verify-export", str(out_dir), "--trusted-key", audit_keys[0].keyid
    )
    assert code == 0, out
    assert "valid: 1 entries" in out
    entries = out_dir / "entries.jsonl"
    entries.write_bytes(entries.read_bytes().replace(b"device-0", b"device-7"))
    code, out = run(capsys, "audit", "verify-export", str(out_dir))
    assert code == 22
    assert "not valid" in out


def test_export_refuses_a_backwards_range(
    repo: Repository, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(
        capsys, "--home", str(repo.layout.home), "audit", "export", "--database-url",
        database_url, "--from", "2026-03-05", "--to", "2026-03-01", str(tmp_path / "x"),
    )  # fmt: skip
    assert code == 20
    assert "before it starts" in out


def test_verify_in_a_real_process_uses_the_home_database_by_default(tmp_path: Path) -> None:
    db = Database.connect(default_url(tmp_path))
    upgrade(db)
    fill(db, 3, start=T0)
    db.dispose()
    env = {k: v for k, v in os.environ.items() if k != "PATCHLINE_DATABASE_URL"}
    command = [sys.executable, "-m", "patchline.cli.main", "--home", str(tmp_path)]
    done = subprocess.run(
        [*command, "audit", "verify"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "3 entries" in done.stdout
    with Database.connect(default_url(tmp_path)).engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entries WHERE seq = 3"))
    done = subprocess.run(
        [*command, "audit", "verify"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 21
    assert "entry 3 (tail_missing)" in done.stderr
