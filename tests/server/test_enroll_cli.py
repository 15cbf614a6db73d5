"""`patchline agent enroll` takes the fleet token from --token or PATCHLINE_ENROLLMENT_TOKEN."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import image_bytes
from tests.server.conftest import ENROLLMENT_TOKEN, RunningServer


def patchline(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "patchline.cli.main", *args],
        capture_output=True,
        text=True,
        check=False,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("PATCHLINE_")},
            "COLUMNS": "400",
            **env,
        },
    )


def _device(server: RunningServer, tmp_path: Path) -> Path:
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
        str(server.home / "public" / "metadata" / "1.root.json"),
        "--server",
        server.url,
        "--region",
        "DE",
        "--deployed-on",
        "2026-01-02",
        env={},
    )
    assert made.returncode == 0, made.stderr
    return device


def test_enroll_takes_the_token_from_the_settings(server: RunningServer, tmp_path: Path) -> None:
    device = _device(server, tmp_path)
    args = ("agent", "enroll", str(device), "--serial", "SN1", "--hardware-id", "HW1")

    missing = patchline(*args, env={})
    assert missing.returncode == 2
    assert "PATCHLINE_ENROLLMENT_TOKEN" in missing.stderr

    enrolled = patchline(*args, env={"PATCHLINE_ENROLLMENT_TOKEN": ENROLLMENT_TOKEN})
    assert enrolled.returncode == 0, enrolled.stderr
    assert "Enrolled as device" in enrolled.stdout
