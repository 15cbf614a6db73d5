"""Signing releases under the server's delivery rules from the command line."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from patchline.policy import Effect, Rule
from patchline.store.db import Database, default_url
from patchline.store.migrate import upgrade
from patchline.store.models import Policy
from tests.cli.test_cli import home, run  # noqa: F401  (a fixture, shared)
from tests.conftest import tree_digest

TODAY = datetime.now(UTC).date()


def _store_rules(repo_home: Path, *rules: Rule) -> None:
    db = Database.connect(default_url(repo_home))
    try:
        upgrade(db)
        with db.transaction() as session:
            for rule in rules:
                session.add(
                    Policy(
                        id=rule.id,
                        title=rule.title,
                        body=rule.to_json(),
                        created_at=datetime.now(UTC),
                        created_by="test",
                    )
                )
    finally:
        db.dispose()


def _add(
    capsys: pytest.CaptureFixture[str], repo_home: Path, build: str, cls: str
) -> tuple[int, str]:
    image = repo_home.parent / f"m1-{build}.img"
    image.write_bytes(f"system image {build}".encode() * 100)
    return run(
        capsys,
        *("--home", str(repo_home), "release", "add", str(image), "--model", "m1"),
        *("--build", build, "--security-patch-level", "2026-02-01", "--class", cls),
        "--under-rules",
    )


LICENCE = Rule(
    id="licence",
    effect=Effect.ALLOW,
    priority=200,
    update_classes=["security"],
    deployed_before=date(2026, 1, 1),
    regions_excluded=["KP"],
    valid_until=TODAY + timedelta(days=30),
)
BAN = Rule(id="ban", effect=Effect.BLOCK, priority=100)


def test_a_release_is_signed_with_the_allowing_rules_limits(
    home: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    _store_rules(home, BAN, LICENCE)
    code, out = _add(capsys, home, "1.1", "security")
    assert code == 0, out
    assert "Signed under: security updates of m1: rule licence (priority 200)" in out
    code, out = run(capsys, "--home", str(home), "release", "list")
    assert code == 0
    assert "not KP; deployed < 2026-01-01" in out
    assert "rule licence" in out


def test_a_release_no_rule_allows_is_not_signed_and_nothing_changes(
    home: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    _store_rules(home, BAN, LICENCE)
    before = tree_digest(home / "public")
    code, out = _add(capsys, home, "1.1", "functional")
    assert code == 6, out
    assert "not signed: rule ban (priority 100) blocks all updates" in out
    assert tree_digest(home / "public") == before


def test_restrict_re_signs_releases_the_rules_now_forbid_once(
    home: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    _store_rules(home, BAN)
    before = datetime.now(UTC).date()
    code, out = run(capsys, "--home", str(home), "release", "restrict")
    after = datetime.now(UTC).date()  # the run may cross midnight
    assert code == 0, out
    assert any(f"Re-signed m1/1.0/m1-1.0.img: all -> until {day}" in out for day in (before, after))
    code, out = run(capsys, "--home", str(home), "release", "restrict")
    assert code == 0
    assert "Every release is within the rules" in out


def test_without_the_servers_database_the_rules_cannot_be_read(
    home: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = run(capsys, "--home", str(home), "release", "restrict")
    assert code != 0
    assert "no server database at" in out
    assert not (home / "patchline.db").exists()
    assert "Traceback" not in out


def test_as_of_and_resign_need_the_rules_and_change_nothing_without_them(
    home: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = tree_digest(home / "public")
    image = home.parent / "m1-1.1.img"
    image.write_bytes(b"system image 1.1" * 100)
    code, out = run(
        capsys,
        *("--home", str(home), "release", "add", str(image), "--model", "m1"),
        *("--build", "1.1", "--security-patch-level", "2026-02-01", "--class", "security"),
        *("--as-of", "2018-07-10"),
    )
    assert code == 2
    assert "--as-of needs --under-rules" in out
    code, out = run(capsys, "--home", str(home), "release", "resign")
    assert code == 2
    assert "release resign re-signs only under the delivery rules" in out
    assert tree_digest(home / "public") == before
