"""Replacing every root key at once is asked for on a terminal and refused elsewhere."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from patchline.cli.main import main
from tests.cli.test_cli import home, run  # noqa: F401  (a fixture, shared)
from tests.conftest import tree_digest

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _root_keyids(repo_home: Path) -> list[str]:
    newest = max(
        (repo_home / "public" / "metadata").glob("*.root.json"),
        key=lambda path: int(path.name.split(".")[0]),
    )
    root = json.loads(newest.read_text())
    return list(root["signed"]["roles"]["root"]["keyids"])


def _main_in(runner: CliRunner, args: list[str], stdin: str | None) -> tuple[int, str]:
    """Run the real entry point (with its error mapping) on the runner's streams."""
    with runner.isolation(input=stdin) as streams:
        code = main(args)
    return code, "".join(s.getvalue().decode() for s in streams[:2] if s is not None)


@pytest.mark.parametrize("stdin", [None, "y\n"])
def test_all_root_keys_off_a_terminal_are_refused_without_the_flag(
    home: Path,  # noqa: F811
    stdin: str | None,
) -> None:
    before = tree_digest(home)
    code, out = _main_in(CliRunner(), ["--home", str(home), "key", "rotate", "root"], stdin)
    assert code == 2, out
    assert "not rotated: this would replace all 3 root keys at once" in out
    for keyid in _root_keyids(home):
        assert keyid[:12] in out
    assert "--all-keys" in out
    assert "--key ID" in out
    assert tree_digest(home) == before


def test_all_root_keys_off_a_terminal_with_the_flag_are_replaced(
    home: Path,  # noqa: F811
) -> None:
    old = _root_keyids(home)
    code, out = _main_in(
        CliRunner(), ["--home", str(home), "key", "rotate", "root", "--all-keys"], None
    )
    assert code == 0, out
    assert out.count("Rotated root key") == 3
    assert not set(old) & set(_root_keyids(home))


def test_one_root_key_needs_no_confirmation(home: Path) -> None:  # noqa: F811
    old = _root_keyids(home)
    code, out = _main_in(
        CliRunner(), ["--home", str(home), "key", "rotate", "root", "--key", old[0][:8]], None
    )
    assert code == 0, out
    assert set(_root_keyids(home)) & set(old) == set(old[1:])


def _on_a_terminal(repo_home: Path, answer: str) -> tuple[int, str]:
    """Run ``patchline key rotate root`` on a real pseudo-terminal; answer its question."""
    exe = Path(sys.executable).parent / "patchline"
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [str(exe), "--home", str(repo_home), "key", "rotate", "root"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "COLUMNS": "300"},
    )
    os.close(follower)
    seen = b""
    answered = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: the process is done
                break
            if not chunk:
                break
            seen += chunk
        if not answered and b"Replace every root key?" in seen:
            os.write(leader, answer.encode())
            answered = True
        if proc.poll() is not None and not ready:
            break
    code = proc.wait(timeout=30)
    os.close(leader)
    return code, ANSI.sub("", seen.decode(errors="replace")).replace("\r\n", "\n")


def test_all_root_keys_on_a_terminal_are_shown_and_asked_for(home: Path) -> None:  # noqa: F811
    old = _root_keyids(home)
    before = tree_digest(home)
    code, out = _on_a_terminal(home, "n\n")
    assert code == 2, out
    assert "This replaces all 3 root keys at once" in out
    for keyid in old:
        assert keyid[:12] in out
    assert "Root needs 2 of its 3 keys to sign" in out
    assert "devices follow the root chain" in out
    assert "not confirmed" in out
    assert tree_digest(home) == before

    code, out = _on_a_terminal(home, "y\n")
    assert code == 0, out
    assert out.count("Rotated root key") == 3
    assert not set(old) & set(_root_keyids(home))
