"""The health check run after booting a slot: a marker the image must hold, and/or a
command that must succeed."""

from __future__ import annotations

import subprocess
from pathlib import Path

from patchline.agent.device import HealthCheck
from patchline.wire.device_api import Slot

_CHUNK = 1 << 20


def check_health(check: HealthCheck, image: Path) -> str | None:
    """Return None when the booted ``image`` is healthy, else why it is not."""
    if not image.is_file():
        return f"{image.name} is missing"
    if check.marker and not _contains(image, check.marker.encode()):
        return f"the image does not hold the health marker {check.marker!r}"
    if check.command:
        return _run_command(check, str(image))
    return None


def check_booted(check: HealthCheck, slot: Slot) -> str | None:
    """Return None when the running system is healthy, else why it is not: on a real
    boot, the health command runs with the booted slot's name (a or b) as its last
    argument (the marker is a property of slot image files, not looked at here)."""
    if not check.command:
        return None
    return _run_command(check, slot.value)


def _run_command(check: HealthCheck, last_argument: str) -> str | None:
    """Run the health command with ``last_argument``; None when it exits 0, else why not."""
    try:
        done = subprocess.run(
            [*check.command, last_argument],
            capture_output=True,
            timeout=check.timeout_seconds,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"the health check did not finish within {check.timeout_seconds:.0f} s"
    except OSError as exc:
        return f"the health check could not run: {exc.strerror}"
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip()[-200:]
        return f"the health check exited with {done.returncode}" + (f": {tail}" if tail else "")
    return None


def _contains(path: Path, needle: bytes) -> bool:
    keep = len(needle) - 1
    tail = b""
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            window = tail + chunk
            if needle in window:
                return True
            tail = window[-keep:] if keep else b""
    return False
