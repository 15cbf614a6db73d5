"""The transport layer stands below the agent, the mirror and the repository."""

from __future__ import annotations

import ast
from pathlib import Path

import patchline.transport

ALLOWED = {"transport", "wire", "errors", "clock", "fsutil"}


def test_transport_imports_only_wire_errors_clock_and_fsutil() -> None:
    package = Path(patchline.transport.__file__).parent
    found: dict[str, set[str]] = {}
    for module in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                parts = name.split(".")
                if parts[0] == "patchline" and len(parts) > 1 and parts[1] not in ALLOWED:
                    found.setdefault(module.name, set()).add(name)
    assert found == {}
