"""Every test SECURITY.md names as evidence exists (and so does each parameter it names)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAMED = re.compile(r"`(tests/[\w/]+\.py)::(\w+)(?:\[([\w-]+)\])?`")


def test_every_test_named_in_security_md_exists() -> None:
    text = (ROOT / "SECURITY.md").read_text()
    named = NAMED.findall(text)
    assert len(named) >= 60
    missing = []
    for file, name, parameter in named:
        path = ROOT / file
        source = path.read_text() if path.is_file() else ""
        if not re.search(rf"^def {name}\(", source, re.MULTILINE):
            missing.append(f"{file}::{name}")
        elif parameter and f'"{parameter}"' not in source:
            missing.append(f"{file}::{name}[{parameter}]")
    assert missing == []
