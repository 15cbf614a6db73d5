"""The ``patchline`` command: happy paths, and bad input that changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from patchline.cli.main import main
from tests.conftest import tree_digest


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture
def home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A repository made with the CLI, with model m1 and build 1.0 published."""
    home = tmp_path / "repo"
    assert run(capsys, "init", str(home))[0] == 0
    assert run(capsys, "--home", str(home), "model", "add", "m1")[0] == 0
    image = tmp_path / "m1-1.0.img"
    image.write_bytes(b"system image 1.0" * 100)
    code, out = run(
        capsys,
        "--home",
        str(home),
        "release",
        "add",
        str(image),
        "--model",
        "m1",
        "--build",
        "1.0",
        "--security-patch-level",
        "2026-01-01",
        "--class",
        "security",
    )
    assert code == 0, out
    return home


def test_full_cli_flow(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "m1-1.1.img"
    image.write_bytes(b"system image 1.1" * 100)
    code, out = run(
        capsys,
        "--home",
        str(home),
        "release",
        "add",
        str(image),
        "--model",
        "m1",
        "--build",
        "1.1",
        "--security-patch-level",
        "2026-02-01",
        "--class",
        "corrective",
        "--regions-excluded",
        "KP,IR",
        "--deployed-before",
        "2026-01-15",
        "--valid-until",
        "2026-08-01",
        "--notes",
        "fixes",
    )
    assert code == 0, out
    assert "Published m1/1.1/m1-1.1.img" in out
    code, out = run(capsys, "--home", str(home), "release", "list")
    assert code == 0
    assert "not IR,KP" in out
    assert "deployed < 2026-01-15" in out
    code, out = run(capsys, "--home", str(home), "key", "rotate", "snapshot")
    assert code == 0
    assert "Rotated snapshot key" in out
    code, out = run(capsys, "--home", str(home), "repo", "refresh", "--force")
    assert code == 0
    assert "Re-signed timestamp" in out
    code, out = run(capsys, "--home", str(home), "repo", "status")
    assert code == 0
    assert "No warnings." in out
    assert "m1" in out
    code, out = run(capsys, "--home", str(home), "model", "list")
    assert "m1: 2 releases" in out


BAD_COMMANDS = [
    (["model", "add", "bad name!"], "not a valid name"),
    (["model", "add", "m1"], "already exists"),
    (["model", "add", "root"], "top-level role"),
    (
        [
            "release",
            "add",
            "IMAGE",
            "--model",
            "nope",
            "--build",
            "2",
            "--security-patch-level",
            "2026-03-01",
            "--class",
            "security",
        ],
        "unknown model 'nope'",
    ),
    (
        [
            "release",
            "add",
            "IMAGE",
            "--model",
            "m1",
            "--build",
            "1.0",
            "--security-patch-level",
            "2026-03-01",
            "--class",
            "security",
        ],
        "already published",
    ),
    (
        [
            "release",
            "add",
            "IMAGE",
            "--model",
            "m1",
            "--build",
            "0.5",
            "--security-patch-level",
            "2026-03-01",
            "--class",
            "security",
        ],
        "older than",
    ),
    (
        [
            "release",
            "add",
            "IMAGE",
            "--model",
            "m1",
            "--build",
            "2",
            "--security-patch-level",
            "2025-03-01",
            "--class",
            "security",
        ],
        "below m1's newest",
    ),
    (
        [
            "release",
            "add",
            "IMAGE",
            "--model",
            "m1",
            "--build",
            "2",
            "--security-patch-level",
            "March",
            "--class",
            "security",
        ],
        "is not a date",
    ),
    (
        [
            "release",
            "add",
            "IMAGE",
            "--model",
            "m1",
            "--build",
            "2",
            "--security-patch-level",
            "2026-03-01",
            "--class",
            "cosmetic",
        ],
        "Invalid value for '--class'",
    ),
    (
        [
            "release",
            "add",
            "IMAGE",
            "--model",
            "m1",
            "--build",
            "2",
            "--security-patch-level",
            "2026-03-01",
            "--class",
            "security",
            "--regions-excluded",
            "K P",
        ],
        "not a region code",
    ),
    (
        [
            "release",
            "add",
            "/no/such.img",
            "--model",
            "m1",
            "--build",
            "2",
            "--security-patch-level",
            "2026-03-01",
            "--class",
            "security",
        ],
        "does not exist",
    ),
    (["key", "rotate", "nobody"], "unknown model 'nobody'"),
    (["key", "rotate", "root", "--key", "zzzz"], "no single key"),
    (["init", "HOME"], "already holds"),
    (["init", "NEW", "--root-keys", "2", "--root-threshold", "3"], "cannot be met"),
    (["init", "NEW", "--expiry", "timestamp=forever"], "duration"),
    (["init", "NEW", "--expiry", "nobody=1d"], "no role named"),
]


@pytest.mark.parametrize(("args", "message"), BAD_COMMANDS)
def test_bad_input_is_refused_and_changes_nothing(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    image = tmp_path / "next.img"
    image.write_bytes(b"next image")
    args = [
        {"IMAGE": str(image), "HOME": str(home), "NEW": str(tmp_path / "new")}.get(a, a)
        for a in args
    ]
    before = tree_digest(home)
    code, out = run(capsys, "--home", str(home), *args)
    assert code != 0
    assert message in out
    assert "Traceback" not in out
    assert tree_digest(home) == before
    assert not (tmp_path / "new").exists()


def test_commands_outside_a_repository_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (["repo", "status"], ["repo", "refresh"], ["model", "list"], ["key", "list"]):
        code, out = run(capsys, "--home", str(tmp_path), *args)
        assert code == 4
        assert "no Patchline repository" in out
        assert "patchline init" in out


def test_missing_passphrase_is_a_clear_error(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PATCHLINE_PASSPHRASE")
    before = tree_digest(home)
    code, out = run(capsys, "--home", str(home), "repo", "refresh", "--force")
    assert code == 4
    assert "no passphrase for the snapshot keys" in out
    assert "PATCHLINE_PASSPHRASE_SNAPSHOT" in out
    assert tree_digest(home) == before


def test_wrong_passphrase_is_a_clear_error(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATCHLINE_PASSPHRASE", "not it")
    before = tree_digest(home)
    code, out = run(capsys, "--home", str(home), "repo", "refresh", "--force")
    assert code == 4
    assert "passphrase does not open" in out
    assert "not it" not in out
    assert tree_digest(home) == before


def test_console_script_runs(home: Path) -> None:
    exe = Path(sys.executable).parent / "patchline"
    result = subprocess.run(
        [str(exe), "--home", str(home), "release", "list"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "m1" in result.stdout
