"""``patchline mirror sync``: what it says it fetched and published, and its exit codes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from patchline.cli.main import main
from patchline.repository import Repository
from tests.agent.hosts import RangeHost
from tests.conftest import publish
from tests.mirror.conftest import served


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


def test_sync_prints_what_it_fetched_and_published_then_that_nothing_is_new(
    repo: Repository,
    tmp_path: Path,
    hosts: Callable[..., RangeHost],
    capsys: pytest.CaptureFixture[str],
) -> None:
    publish(repo, "alpha", "1.0")
    url = hosts(repo.layout.public_dir).url
    dest = tmp_path / "mirror"
    root = repo.layout.metadata_file("root", 1)

    code, out = run(capsys, "mirror", "sync", url, str(dest), "--root", str(root))

    assert code == 0, out
    # timestamp, snapshot, targets, and alpha, beta, their archives and the archives'
    # 16 hash bins each (root v1 is given)
    assert "Fetched 39 metadata files" in out
    assert "and 1 targets (65.5 kB)" in out
    assert "Published 1 new targets and" in out
    assert out.rstrip(".").endswith("timestamp.json")
    assert "metadata/timestamp.json" in served(dest)

    code, out = run(capsys, "mirror", "sync", url, str(dest))

    assert code == 0, out
    assert "Fetched 1 metadata files" in out
    assert "Nothing new" in out


def test_sync_exit_codes_name_the_refusal(
    repo: Repository,
    tmp_path: Path,
    hosts: Callable[..., RangeHost],
    capsys: pytest.CaptureFixture[str],
) -> None:
    publish(repo, "alpha", "1.0")
    dest = tmp_path / "mirror"

    code, out = run(capsys, "mirror", "sync", hosts(repo.layout.public_dir).url, str(dest))
    assert code == 31
    assert "--root" in out

    tampering = hosts(repo.layout.public_dir, tamper=True).url
    root = str(repo.layout.metadata_file("root", 1))
    code, out = run(capsys, "mirror", "sync", tampering, str(dest), "--root", root)
    assert code == 35
    assert "tampered" in out
    assert served(dest) == {}

    code, out = run(capsys, "mirror", "sync", "ftp://example.org/repo", str(dest))
    assert code == 2
