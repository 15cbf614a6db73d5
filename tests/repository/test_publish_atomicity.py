"""A publish that dies part-way leaves the previous state served whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchline.demo.static_host import StaticHost
from patchline.fsutil import write_atomic
from patchline.repository import Repository
from tests.conftest import publish
from tests.e2e.test_tuf_client import device, download, shipped_root


class Crash(Exception):
    pass


def test_crash_before_timestamp_keeps_previous_state(
    repo: Repository, host: StaticHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = shipped_root(repo)
    publish(repo, "alpha", "1.0")
    before = repo.state()

    def crash_on_timestamp(path: Path, data: bytes, mode: int = 0o644) -> None:
        if path.name == "timestamp.json":
            raise Crash("power lost")
        write_atomic(path, data, mode)

    monkeypatch.setattr("patchline.repository.publisher.write_atomic", crash_on_timestamp)
    with pytest.raises(Crash):
        publish(repo, "alpha", "1.1")
    monkeypatch.undo()

    after = repo.state()
    assert after.timestamp.signed.version == before.timestamp.signed.version
    assert "alpha/1.1/alpha-1.1.img" not in after.model("alpha").signed.targets
    # Devices still see the old, complete state.
    updater = device(tmp_path, "d1", host, root)
    updater.refresh()
    assert updater.get_targetinfo("alpha/1.1/alpha-1.1.img") is None
    assert download(device(tmp_path, "d1", host, root), "alpha/1.0/alpha-1.0.img")
    # The next publish overwrites the orphaned versions and succeeds.
    publish(repo, "alpha", "1.1")
    assert download(device(tmp_path, "d2", host, root), "alpha/1.1/alpha-1.1.img")


def test_timestamp_is_written_last(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []

    def record(path: Path, data: bytes, mode: int = 0o644) -> None:
        order.append(path.name)
        write_atomic(path, data, mode)

    monkeypatch.setattr("patchline.repository.publisher.write_atomic", record)
    publish(repo, "alpha", "1.0")
    assert order == ["2.alpha.json", order[1], "timestamp.json"]
    assert order[1].endswith(".snapshot.json")
