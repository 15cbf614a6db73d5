"""Ordering of build identifiers, so that "newer build" means the same everywhere."""

from __future__ import annotations

import re

_RUN = re.compile(r"(\d+)|(\D+)")


def build_sort_key(build: str) -> tuple[tuple[int, int, str], ...]:
    """Return a key ordering builds naturally: runs of digits compare as numbers.

    ``"1.10" > "1.9"`` and ``"20260105.2" > "20260105.1"``; other runs compare as
    text, and an identifier that extends another sorts after it (``"2.0.1" > "2.0"``).
    """
    key: list[tuple[int, int, str]] = []
    for digits, text in _RUN.findall(build):
        if digits:
            key.append((1, int(digits), ""))
        else:
            key.append((0, 0, text))
    return tuple(key)


def is_newer_build(candidate: str, current: str) -> bool:
    """Return True when ``candidate`` orders strictly after ``current``."""
    return build_sort_key(candidate) > build_sort_key(current)
