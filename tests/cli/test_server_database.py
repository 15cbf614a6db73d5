"""Commands that read the server's database say when there is none, and create nothing."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from tests.cli.test_cli import home, run  # noqa: F401  (a fixture, shared)
from tests.conftest import POSTGRES_URL_VAR, tree_digest

COMMANDS = [
    (["release", "restrict"], 1),
    (
        [
            *("release", "add", "IMAGE", "--model", "m1", "--build", "1.1"),
            *("--security-patch-level", "2026-02-01", "--class", "security", "--under-rules"),
        ],
        1,
    ),
    (["audit", "verify"], 20),
    (["audit", "export", "--from", "2026-01-01", "--to", "2026-01-31", "OUT"], 20),
]


def _args(args: list[str], tmp_path: Path) -> list[str]:
    image = tmp_path / "m1-1.1.img"
    image.write_bytes(b"system image 1.1" * 100)
    return [{"IMAGE": str(image), "OUT": str(tmp_path / "out")}.get(a, a) for a in args]


@pytest.mark.parametrize(("args", "exit_code"), COMMANDS)
def test_no_server_database_is_said_and_none_is_created(
    home: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    exit_code: int,
) -> None:
    before = tree_digest(home)
    code, out = run(capsys, "--home", str(home), *_args(args, tmp_path))
    assert code == exit_code, out
    assert f"no server database at sqlite:///{home.absolute() / 'patchline.db'}" in out
    assert "start `patchline serve` once" in out
    assert "PATCHLINE_DATABASE_URL" in out
    assert "Traceback" not in out
    assert "SELECT" not in out
    assert not (home / "patchline.db").exists()
    assert tree_digest(home) == before
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("args", "exit_code"), COMMANDS)
def test_an_empty_sqlite_file_is_not_a_server_database(
    home: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    exit_code: int,
) -> None:
    (home / "patchline.db").touch()
    before = tree_digest(home)
    code, out = run(capsys, "--home", str(home), *_args(args, tmp_path))
    assert code == exit_code, out
    assert "is not set up (not migrated)" in out
    assert "start `patchline serve` once" in out
    assert "Traceback" not in out
    assert (home / "patchline.db").stat().st_size == 0
    assert tree_digest(home) == before


@pytest.fixture
def empty_postgres_database() -> Iterator[str]:
    """A new PostgreSQL database with no tables."""
    admin_url = os.environ.get(POSTGRES_URL_VAR)
    if not admin_url:
        pytest.skip(f"{POSTGRES_URL_VAR} is not set")
    name = f"patchline_empty_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if os.environ.get("PATCHLINE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL at {admin_url} is unreachable: {exc}")
        pytest.skip(f"PostgreSQL at {admin_url} is unreachable: {exc}")
    yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.postgres
def test_an_unmigrated_postgres_database_is_said_and_left_empty(
    home: Path,  # noqa: F811
    empty_postgres_database: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = run(
        capsys,
        *("--home", str(home), "release", "restrict", "--database-url", empty_postgres_database),
    )
    assert code == 1, out
    assert "is not set up (not migrated)" in out
    assert "start `patchline serve` once" in out
    engine = create_engine(empty_postgres_database)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
