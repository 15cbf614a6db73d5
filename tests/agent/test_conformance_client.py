"""patchline-tuf-client speaks the tuf-conformance client protocol."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from patchline.agent.conformance import main
from patchline.repository import Repository
from tests.agent.hosts import RangeHost
from tests.conftest import image_bytes, publish


def test_init_refresh_and_download_keep_exact_metadata_and_skip_cached_targets(
    repo: Repository, hosts: Callable[..., RangeHost], tmp_path: Path
) -> None:
    publish(repo, "alpha", "1.0")
    host = hosts(repo.layout.public_dir)
    meta, targets = tmp_path / "meta", tmp_path / "targets"
    root = str(repo.layout.metadata_file("root", 1))
    common = ["--metadata-url", f"{host.url}/metadata", "--metadata-dir", str(meta)]
    fetch = [
        *common,
        "--target-name",
        "alpha/1.0/alpha-1.0.img",
        "--target-dir",
        str(targets),
        "--target-base-url",
        f"{host.url}/targets",
        "download",
    ]

    assert main(["--metadata-dir", str(meta), "init", root]) == 0
    assert host.requests == []
    assert main([*common, "refresh"]) == 0
    for role in ("root", "timestamp", "snapshot", "targets"):
        assert (meta / f"{role}.json").is_file()
    timestamp = (repo.layout.metadata_dir / "timestamp.json").read_bytes()
    assert (meta / "timestamp.json").read_bytes() == timestamp

    assert main(fetch) == 0
    assert (targets / "alpha%2F1.0%2Falpha-1.0.img").read_bytes() == image_bytes("alpha/1.0")
    assert main(fetch) == 0
    assert len(host.target_requests()) == 1


def test_a_missing_target_or_host_exits_1(
    repo: Repository, hosts: Callable[..., RangeHost], tmp_path: Path
) -> None:
    host = hosts(repo.layout.public_dir)
    meta = tmp_path / "meta"
    main(["--metadata-dir", str(meta), "init", str(repo.layout.metadata_file("root", 1))])
    missing = [
        "--metadata-url",
        f"{host.url}/metadata",
        "--metadata-dir",
        str(meta),
        "--target-name",
        "alpha/9.9/none.img",
        "--target-dir",
        str(tmp_path / "t"),
        "--target-base-url",
        f"{host.url}/targets",
        "download",
    ]
    assert main(missing) == 1
    assert (
        main(["--metadata-url", "http://127.0.0.1:9/m", "--metadata-dir", str(meta), "refresh"])
        == 1
    )
