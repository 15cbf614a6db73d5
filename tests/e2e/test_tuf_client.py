"""A device with python-tuf's ngclient, the root it shipped with, and a plain static host."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from tuf.api.exceptions import ExpiredMetadataError, LengthOrHashMismatchError
from tuf.ngclient import Updater

from patchline.clock import FixedClock
from patchline.demo.static_host import StaticHost
from patchline.repository import Repository, refresh, rotate_key
from patchline.wire.release import model_lookup_path
from tests.conftest import image_bytes, publish


def device(tmp_path: Path, name: str, host: StaticHost, shipped_root: bytes) -> Updater:
    """An ngclient updater as a device would build it: bootstrapped with its shipped root."""
    folder = tmp_path / name
    (folder / "metadata").mkdir(parents=True, exist_ok=True)
    (folder / "downloads").mkdir(exist_ok=True)
    return Updater(
        metadata_dir=str(folder / "metadata"),
        metadata_base_url=f"{host.url}/metadata/",
        target_base_url=f"{host.url}/targets/",
        target_dir=str(folder / "downloads"),
        bootstrap=shipped_root,
    )


def shipped_root(repo: Repository) -> bytes:
    return repo.layout.metadata_file("root", 1).read_bytes()


def download(updater: Updater, path: str) -> bytes:
    updater.refresh()
    info = updater.get_targetinfo(path)
    assert info is not None, f"{path} not found through the delegations"
    return Path(updater.download_target(info)).read_bytes()


def test_device_refreshes_downloads_and_verifies(
    repo: Repository, host: StaticHost, tmp_path: Path
) -> None:
    root = shipped_root(repo)
    publish(repo, "alpha", "1.0")
    assert download(device(tmp_path, "d1", host, root), "alpha/1.0/alpha-1.0.img") == image_bytes(
        "alpha/1.0"
    )


def test_device_keeps_updating_after_root_and_targets_key_rotation(
    repo: Repository, host: StaticHost, tmp_path: Path
) -> None:
    root = shipped_root(repo)
    publish(repo, "alpha", "1.0")
    old_root_key = repo.state().root.signed.roles["root"].keyids[0]
    rotate_key(repo, "root", old_root_key)
    rotate_key(repo, "root")  # every root key replaced
    rotate_key(repo, "targets")
    rotate_key(repo, "snapshot")
    rotate_key(repo, "timestamp")
    rotate_key(repo, "alpha")
    publish(repo, "alpha", "2.0")
    state = repo.state()
    assert state.root.signed.version == 6
    assert old_root_key not in state.root.signed.keys
    # A device that trusts only root v1 walks the chain v2..v6.
    updater = device(tmp_path, "d1", host, root)
    assert download(updater, "alpha/2.0/alpha-2.0.img") == image_bytes("alpha/2.0")
    assert (tmp_path / "d1" / "metadata" / "root_history" / "6.root.json").exists() or (
        tmp_path / "d1" / "metadata" / "root.json"
    ).exists()


def test_a_device_that_updated_before_rotation_follows_it(
    repo: Repository, host: StaticHost, tmp_path: Path
) -> None:
    root = shipped_root(repo)
    publish(repo, "alpha", "1.0")
    assert download(device(tmp_path, "d1", host, root), "alpha/1.0/alpha-1.0.img")
    rotate_key(repo, "timestamp")
    rotate_key(repo, "root")
    publish(repo, "alpha", "1.1")
    assert download(device(tmp_path, "d1", host, root), "alpha/1.1/alpha-1.1.img") == image_bytes(
        "alpha/1.1"
    )


def test_tampered_target_is_refused(repo: Repository, host: StaticHost, tmp_path: Path) -> None:
    root = shipped_root(repo)
    publish(repo, "alpha", "1.0")
    stored = next((repo.layout.targets_dir / "alpha" / "1.0").iterdir())
    data = bytearray(stored.read_bytes())
    data[100] ^= 0x01
    stored.write_bytes(bytes(data))
    with pytest.raises(LengthOrHashMismatchError):
        download(device(tmp_path, "d1", host, root), "alpha/1.0/alpha-1.0.img")


def test_expired_timestamp_is_refused(
    repo: Repository, host: StaticHost, tmp_path: Path, clock: FixedClock
) -> None:
    root = shipped_root(repo)
    clock.advance(timedelta(days=-3))  # the timestamp is signed three days ago: 1 day validity
    publish(repo, "alpha", "1.0")
    with pytest.raises(ExpiredMetadataError, match="timestamp"):
        device(tmp_path, "d1", host, root).refresh()
    clock.advance(timedelta(days=3))
    refresh(repo)  # the timer job re-signs what is due
    assert download(device(tmp_path, "d2", host, root), "alpha/1.0/alpha-1.0.img")


def test_device_of_one_model_fetches_only_its_models_role(
    repo: Repository, host: StaticHost, tmp_path: Path
) -> None:
    root = shipped_root(repo)
    publish(repo, "alpha", "1.0")
    publish(repo, "beta", "1.0")
    updater = device(tmp_path, "d1", host, root)
    updater.refresh()
    assert updater.get_targetinfo(model_lookup_path("alpha")) is None
    cached = sorted(p.name for p in (tmp_path / "d1" / "metadata").glob("*.json"))
    assert cached == ["alpha.json", "root.json", "snapshot.json", "targets.json", "timestamp.json"]


def test_archived_builds_stay_signed_and_downloadable(
    repo: Repository, host: StaticHost, tmp_path: Path
) -> None:
    root = shipped_root(repo)
    for minor in range(10):  # the model's role keeps the newest 8 builds
        publish(repo, "alpha", f"1.{minor}")
    state = repo.state()
    current = state.model("alpha").signed.targets
    assert len({path.split("/")[1] for path in current}) == 8
    assert sorted(p for p in state.archived_targets("alpha") if p.endswith(".img")) == [
        "alpha/1.0/alpha-1.0.img",
        "alpha/1.1/alpha-1.1.img",
    ]
    assert download(device(tmp_path, "d1", host, root), "alpha/1.0/alpha-1.0.img") == image_bytes(
        "alpha/1.0"
    )
    # the archive itself holds no targets: ngclient followed its succinct delegation to
    # the one hash bin of that path, and fetched no other bin
    assert state.archive("alpha").signed.targets == {}
    bin_name = state.archive_bin_for("alpha", "alpha/1.0/alpha-1.0.img")
    fetched = sorted(p.name for p in (tmp_path / "d1" / "metadata").glob("alpha.archive*.json"))
    assert fetched == sorted(["alpha.archive.json", f"{bin_name}.json"])
