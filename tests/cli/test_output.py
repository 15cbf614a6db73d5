"""What the listing commands print when piped: whole rows, and JSON with stable keys."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from patchline.cli.main import cli, main
from tests.conftest import tree_digest

MODEL = "aurora-5g-pro-max-ultra-edition-with-a-very-long-model-name-2026"  # 64 characters
BUILD = "1.1-build-with-a-long-name-2026-11-30-nightly-release-candidate1"  # 64 too
ISO_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def long_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with a long model name and build, made with the CLI; no COLUMNS set."""
    monkeypatch.delenv("COLUMNS", raising=False)
    home = tmp_path / "repo"
    image = tmp_path / "system.img"
    image.write_bytes(b"system image" * 100)
    for args in (
        ["init", str(home)],
        ["--home", str(home), "model", "add", MODEL],
        [
            *("--home", str(home), "release", "add", str(image), "--model", MODEL),
            *("--build", BUILD, "--security-patch-level", "2026-11-05", "--class", "security"),
            *("--regions-excluded", "KP", "--deployed-before", "2026-04-15"),
            *("--valid-until", "2026-12-31", "--build-time", "2026-11-01T08:30:00+02:00"),
        ],
    ):
        assert main(args) == 0
    return home


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _line_with(text: str, *needles: str) -> None:
    """Assert one line of ``text`` holds every needle, and nothing was cut short."""
    assert any(all(n in line for n in needles) for line in text.splitlines()), text
    assert "…" not in text


def test_release_list_prints_whole_rows_when_piped(long_home: Path) -> None:
    out = _invoke("--home", str(long_home), "release", "list")
    _line_with(out, MODEL, BUILD, "security", "2026-11-05", "not KP; deployed < 2026-04-15")


def test_repo_status_prints_whole_rows_when_piped(long_home: Path) -> None:
    out = _invoke("--home", str(long_home), "repo", "status")
    _line_with(out, f"{MODEL}.archive", "ok")
    _line_with(out, MODEL, BUILD, "2026-11-05")


def test_a_real_pipe_gets_whole_rows(long_home: Path) -> None:
    exe = Path(sys.executable).parent / "patchline"
    result = subprocess.run(
        [str(exe), "--home", str(long_home), "release", "list"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
        timeout=60,
        check=True,
    )
    _line_with(result.stdout, MODEL, BUILD, "not KP; deployed < 2026-04-15; until 2026-12-31")


def test_release_list_json(long_home: Path) -> None:
    before = tree_digest(long_home)
    document = json.loads(_invoke("--home", str(long_home), "release", "list", "--json"))
    [release] = document["releases"]
    assert release == {
        "model": MODEL,
        "build": BUILD,
        "update_class": "security",
        "security_patch_level": "2026-11-05",
        "build_time": "2026-11-01T06:30:00Z",
        "target_path": f"{MODEL}/{BUILD}/system.img",
        "length": 1200,
        "sha256": release["sha256"],
        "eligibility": {
            "regions_allowed": [],
            "regions_excluded": ["KP"],
            "deployed_before": "2026-04-15",
            "valid_until": "2026-12-31",
            "rule": "",
        },
        "notes": "",
    }
    assert re.fullmatch(r"[0-9a-f]{64}", release["sha256"])
    assert tree_digest(long_home) == before
    only = _invoke("--home", str(long_home), "release", "list", "--json", "--model", MODEL)
    assert json.loads(only) == document


def test_repo_status_json(long_home: Path) -> None:
    document = json.loads(_invoke("--home", str(long_home), "repo", "status", "--json"))
    assert set(document) == {"roles", "models", "warnings"}
    roles = {role["name"]: role for role in document["roles"]}
    bins = {f"{MODEL}.archive-{n:x}" for n in range(16)}  # the archive's hash bins
    assert (
        set(roles) == {"root", "targets", "snapshot", "timestamp", MODEL, f"{MODEL}.archive"} | bins
    )
    root = roles["root"]
    assert set(root) == {
        *("name", "version", "threshold", "keyids", "keys_here", "expires", "signatures_ok"),
    }
    assert root["threshold"] == 2
    assert root["keys_here"] == 3
    assert len(root["keyids"]) == 3
    assert all(re.fullmatch(r"[0-9a-f]{64}", k) for k in root["keyids"])
    assert root["signatures_ok"] is True
    for role in document["roles"]:
        assert ISO_SECONDS.match(role["expires"]), role
        datetime.fromisoformat(role["expires"])
    assert document["models"] == [
        {"name": MODEL, "releases": 1, "newest_build": BUILD, "newest_patch_level": "2026-11-05"}
    ]
    assert document["warnings"] == []


def test_key_list_json(long_home: Path) -> None:
    document = json.loads(_invoke("--home", str(long_home), "key", "list", "--json"))
    keys = document["keys"]
    assert {key["role"] for key in keys} == {
        *("root", "targets", "snapshot", "timestamp", "offline", MODEL),
    }
    assert sum(key["role"] == "root" for key in keys) == 3
    for key in keys:
        assert set(key) == {"role", "keyid", "uri", "created"}
        assert re.fullmatch(r"[0-9a-f]{64}", key["keyid"])
        assert key["keyid"] in key["uri"]
        assert ISO_SECONDS.match(key["created"]), key
