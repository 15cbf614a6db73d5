"""An invalid setting stops the command line and the server at start: exit 3, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from patchline.cli.main import main
from tests.server.conftest import free_port

PATCHLINE = Path(sys.executable).parent / "patchline"


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``args`` with ``env`` added; a process still running after 60 s (a server that
    started despite the setting) is killed and fails the test."""
    try:
        return subprocess.run(
            args,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{args[0]} kept running with {env}")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PATCHLINE_PORT", "abc"),
        ("PATCHLINE_API_MAX_BODY_BYTES", "-1"),
        ("PATCHLINE_CREDENTIAL_RECHECK_SECONDS", "soon"),
        ("PATCHLINE_SERVE_REPOSITORY", "maybe"),
        ("PATCHLINE_MIRRORS", "https://a.example,not-a-url"),
    ],
)
def test_serve_refuses_an_invalid_setting_with_exit_3(
    repo_home: Path, variable: str, value: str
) -> None:
    done = _run(
        [str(PATCHLINE), "--home", str(repo_home), "serve", "--port", str(free_port())],
        {variable: value},
    )
    assert done.returncode == 3, done.stderr
    assert variable in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_the_server_factory_refuses_an_invalid_setting_with_a_message(repo_home: Path) -> None:
    code = "from patchline.server.entry import app_from_env; app_from_env()"
    done = _run(
        [sys.executable, "-c", code],
        {"PATCHLINE_HOME": str(repo_home), "PATCHLINE_PORT": "abc"},
    )
    assert done.returncode == 3, done.stderr
    assert "PATCHLINE_PORT" in done.stderr
    assert "Traceback" not in done.stderr


def test_any_command_checks_the_settings_once_at_start(
    repo_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATCHLINE_ENROLLMENT_TOKEN", "too-short")
    assert main(["--home", str(repo_home), "repo", "status"]) == 3
    err = capsys.readouterr().err
    assert "PATCHLINE_ENROLLMENT_TOKEN" in err
    assert "too-short" not in err


def test_home_comes_from_the_settings_unless_given(
    repo_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATCHLINE_HOME", str(repo_home))
    assert main(["repo", "status"]) == 0
    monkeypatch.setenv("PATCHLINE_HOME", str(repo_home / "nowhere"))
    assert main(["--home", str(repo_home), "repo", "status"]) == 0
    capsys.readouterr()


@pytest.fixture
def repo_home(repo: object, tmp_path: Path) -> Path:
    return tmp_path / "repo"
