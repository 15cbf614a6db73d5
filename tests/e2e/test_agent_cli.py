"""The `patchline agent` commands as a person runs them: messages and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from patchline.repository import Repository
from tests.agent.conftest import closed_port_url
from tests.conftest import image_bytes, publish


def patchline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "patchline.cli.main", *args],
        capture_output=True,
        text=True,
        check=False,
        env={"COLUMNS": "400", "PATH": "/usr/bin:/bin"},
    )


def test_a_device_made_and_updated_from_the_command_line(repo: Repository, tmp_path: Path) -> None:
    publish(repo, "alpha", "2.0")
    factory = tmp_path / "factory.img"
    factory.write_bytes(image_bytes("alpha/1.0"))
    device = tmp_path / "dev"
    made = patchline(
        "agent",
        "init",
        str(device),
        "--model",
        "alpha",
        "--build",
        "1.0",
        "--security-patch-level",
        "2026-01-01",
        "--image",
        str(factory),
        "--root",
        str(repo.layout.metadata_file("root", 1)),
        "--bundle",
        str(repo.layout.public_dir),
    )
    assert made.returncode == 0, made.stderr

    updated = patchline("agent", "update", str(device))
    assert updated.returncode == 0, updated.stderr
    assert "Installed build 2.0" in updated.stdout

    status = patchline("agent", "status", str(device))
    assert status.returncode == 0
    assert "3 report(s) queued" in status.stdout


def test_no_reachable_source_exits_12_and_says_what_was_tried(
    repo: Repository, tmp_path: Path
) -> None:
    factory = tmp_path / "factory.img"
    factory.write_bytes(image_bytes("alpha/1.0"))
    device = tmp_path / "dev"
    mirror = closed_port_url()
    patchline(
        "agent",
        "init",
        str(device),
        "--model",
        "alpha",
        "--build",
        "1.0",
        "--security-patch-level",
        "2026-01-01",
        "--image",
        str(factory),
        "--root",
        str(repo.layout.metadata_file("root", 1)),
        "--mirror",
        mirror,
    )

    updated = patchline("agent", "update", str(device))

    assert updated.returncode == 12
    assert "No update source reachable." in updated.stderr
    assert f"Mirror {mirror}: connection refused." in updated.stderr
    assert "what to do:" in updated.stderr


def test_a_directory_that_is_not_a_device_exits_11(tmp_path: Path) -> None:
    updated = patchline("agent", "update", str(tmp_path / "nothing"))
    assert updated.returncode == 11
    assert "is not a device directory" in updated.stderr
