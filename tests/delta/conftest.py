"""Synthetic images for the delta tests: random bytes with deterministic edits."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from patchline.delta import build as build_module

Edit = tuple[str, int, int]  # (kind, offset, length): "insert", "delete" or "overwrite"


def random_bytes(rng: random.Random, n: int) -> bytes:
    """``n`` pseudo-random bytes from ``rng``."""
    return rng.randbytes(n)


def edited(data: bytes, edits: list[Edit], rng: random.Random) -> bytes:
    """``data`` with ``edits`` applied from the last offset to the first."""
    out = bytearray(data)
    for kind, offset, length in sorted(edits, key=lambda e: e[1], reverse=True):
        if kind == "insert":
            out[offset:offset] = rng.randbytes(length)
        elif kind == "delete":
            del out[offset : offset + length]
        else:
            out[offset : offset + length] = rng.randbytes(length)
    return bytes(out)


@pytest.fixture
def small_spans(monkeypatch: pytest.MonkeyPatch) -> int:
    """Make the builder cut 64 KiB spans so small images still need many operations."""
    span = 64 << 10
    monkeypatch.setattr(build_module, "SPAN", span)
    monkeypatch.setattr(build_module, "SOURCE_BUDGET", 4 * span)
    return span


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, bytes], Path]:
    """Write bytes to a named file under the test's directory and return its path."""

    def _write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return _write
