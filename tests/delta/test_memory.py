"""Applying a delta holds the same memory for a 64 MiB image as for a 256 MiB one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from patchline.delta import build_delta

MiB = 1 << 20

_APPLY_IN_CHILD = """
import json, sys
from pathlib import Path
from patchline.delta import apply_delta
source, patch, out, sha, length = sys.argv[1:6]
apply_delta(Path(source), Path(patch), Path(out), expected_sha256=sha, expected_length=int(length))
status = Path("/proc/self/status").read_text()
peak_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
print(json.dumps({"peak_mib": peak_kib / 1024}))
"""


def _make_pair(directory: Path, size: int) -> tuple[Path, Path]:
    """A random source and a target with scattered edits and a shift every 16 MiB."""
    source, target = directory / "source.img", directory / "target.img"
    with source.open("wb") as s, target.open("wb") as t:
        for i in range(size // (16 * MiB)):
            block = os.urandom(16 * MiB)
            s.write(block)
            edited = bytearray(block)
            edited[i * 4096 : i * 4096 + 100] = os.urandom(100)
            t.write(bytes(edited[: 8 * MiB]) + os.urandom(3000) + bytes(edited[8 * MiB :]))
    return source, target


def _apply_peak_mib(tmp_path: Path, size: int) -> float:
    directory = tmp_path / str(size)
    directory.mkdir()
    source, target = _make_pair(directory, size)
    info = build_delta(source, target, directory / "delta.pld")
    out = directory / "out.img"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _APPLY_IN_CHILD,
            str(source),
            str(directory / "delta.pld"),
            str(out),
            info.target_sha256,
            str(info.target_length),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert out.stat().st_size == size + (size // (16 * MiB)) * 3000
    peak: float = json.loads(result.stdout)["peak_mib"]
    for path in (source, target, out):
        path.unlink()
    return peak


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_apply_peak_memory_does_not_grow_with_image_size(tmp_path: Path) -> None:
    small = _apply_peak_mib(tmp_path, 64 * MiB)
    large = _apply_peak_mib(tmp_path, 256 * MiB)
    assert large < small + 8, (small, large)
    assert large < 128, (small, large)
