"""``patchline continuity``: naming a successor and its handover, from the command line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from patchline.cli.main import main
from patchline.clock import FixedClock
from patchline.repository import Repository
from tests.conftest import open_repo, publish, tree_digest


def run(home: Path, *args: str) -> int:
    return main(["--home", str(home), "continuity", *args])


def test_add_successor_then_handover_publishes_under_the_successors_keys(
    repo: Repository, tmp_path: Path, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(repo, "alpha", "1.0")
    keys = tmp_path / "carrier-keys"
    home = repo.layout.home
    assert run(home, "add-successor", "carrier", "--generate", "--keys-dir", str(keys)) == 0
    assert "Successor carrier named in root version 2" in capsys.readouterr().out
    successor_home = tmp_path / "successor-home"
    shutil.copytree(repo.layout.public_dir, successor_home / "public")
    assert run(successor_home, "handover", "--successor", "carrier", "--keys-dir", str(keys)) == 0
    out = capsys.readouterr().out
    assert "carrier now signs this repository (root version 3)" in out
    assert "alpha" in out
    assert "timestamp" in out
    successor = open_repo(successor_home, clock)
    assert successor.config.keys_dir.resolve() == keys.resolve()
    publish(successor, "alpha", "2.0")
    assert successor.state().model("alpha").signed.targets


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["add-successor", "carrier"], 2, "either --key-file"),
        (["add-successor", "carrier", "--generate"], 2, "needs --keys-dir"),
        (["add-successor", "carrier", "--keys-dir", "k"], 2, "goes with --generate"),
        (["add-successor", "no/such", "--generate", "--keys-dir", "{tmp}/k"], 2, "not a valid"),
        (["add-successor", "carrier", "--generate", "--keys-dir", "{home}/k"], 2, "inside"),
        (["add-successor", "carrier", "--key-file", "{tmp}/missing.json"], 4, "cannot read"),
        (["add-successor", "carrier", "--key-file", "{tmp}/bad.json"], 4, "not a public key"),
        (["handover", "--successor", "carrier", "--keys-dir", "{home}/keys"], 4, "no successor"),
        (["handover", "--successor", "carrier"], 2, "--keys-dir"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    repo: Repository,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    message: str,
) -> None:
    home = repo.layout.home
    (tmp_path / "bad.json").write_text('{"keyid": "x"}')
    digest = tree_digest(home)
    argv = [a.format(tmp=tmp_path, home=home) for a in args]
    assert run(home, *argv) == code
    captured = capsys.readouterr()
    assert message in captured.err + captured.out
    assert tree_digest(home) == digest
    assert not (tmp_path / "k").exists()


def test_handover_with_the_makers_keys_is_refused(
    repo: Repository, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = repo.layout.home
    assert (
        run(home, "add-successor", "carrier", "--generate", "--keys-dir", str(tmp_path / "c")) == 0
    )
    digest = tree_digest(home)
    args = ["handover", "--successor", "carrier", "--keys-dir", str(repo.keyring.keys_dir)]
    assert run(home, *args) == 4
    assert "holds 0 of carrier's root keys" in capsys.readouterr().err
    assert tree_digest(home) == digest
