"""A model's archive is split into hash bins, so a publication re-signs one small bin;
metadata versions no client can still need are removed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tuf.api.metadata import Targets
from tuf.ngclient import Updater

from patchline.demo.static_host import StaticHost
from patchline.repository import Repository, releases_of
from patchline.repository.publisher import prune_unreachable
from patchline.repository.rotation import rotate_key
from patchline.repository.state import archive_role
from tests.conftest import image_bytes, publish


def _versions(repo: Repository) -> dict[str, int]:
    return {name: md.signed.version for name, md in repo.state().signed_roles()}


def _fetch(repo: Repository, host: StaticHost, folder: Path, path: str) -> bytes:
    (folder / "metadata").mkdir(parents=True)
    updater = Updater(
        metadata_dir=str(folder / "metadata"),
        metadata_base_url=f"{host.url}/metadata/",
        target_base_url=f"{host.url}/targets/",
        target_dir=str(folder),
        bootstrap=repo.layout.metadata_file("root", 1).read_bytes(),
    )
    updater.refresh()
    info = updater.get_targetinfo(path)
    assert info is not None, f"{path} not found through the delegations"
    return Path(updater.download_target(info)).read_bytes()


def test_an_archived_build_re_signs_only_the_bin_its_path_hashes_to(repo: Repository) -> None:
    for minor in range(8):  # the model's role keeps the newest 8 builds
        publish(repo, "alpha", f"1.{minor}")
    before = _versions(repo)
    publish(repo, "alpha", "1.8")  # 1.0 (one image, no delta) moves to the archive
    after = _versions(repo)
    state = repo.state()
    bin_name = state.archive_bin_for("alpha", "alpha/1.0/alpha-1.0.img")
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {"alpha", bin_name, "snapshot", "timestamp"}
    assert "alpha/1.0/alpha-1.0.img" in state.delegated(str(bin_name)).signed.targets
    assert state.archive("alpha").signed.targets == {}
    assert [r.info.build for r in releases_of(state, "alpha")][:2] == ["1.0", "1.1"]


def _unsplit(repo: Repository, model: str) -> None:
    """Publish the archive as written before bins existed: it holds the archived
    targets itself and the snapshot names no bin."""
    with repo.transaction() as tx:
        archive = tx.edit_archive(model)
        for name in tx.state.archive_bins(model):
            archive.targets.update(tx.state.delegated(name).signed.targets)
            del tx.state.snapshot.signed.meta[f"{name}.json"]
        archive.delegations = None
        tx.resign("snapshot")
        tx.commit()


def test_an_archive_from_before_bins_is_split_at_its_next_change_and_stays_readable(
    repo: Repository, host: StaticHost, tmp_path: Path
) -> None:
    for minor in range(10):
        publish(repo, "alpha", f"1.{minor}")
    _unsplit(repo, "alpha")
    old = repo.state()
    assert old.archive_bins("alpha") == []
    assert {"alpha/1.0/alpha-1.0.img", "alpha/1.1/alpha-1.1.img"} <= set(
        old.archive("alpha").signed.targets
    )
    # compatible reading: the old layout still serves its archived builds
    assert _fetch(repo, host, tmp_path / "d1", "alpha/1.0/alpha-1.0.img") == image_bytes(
        "alpha/1.0"
    )

    publish(repo, "alpha", "1.10")  # archives 1.2: the archive is split first
    state = repo.state()
    assert len(state.archive_bins("alpha")) == 16
    assert state.archive("alpha").signed.targets == {}
    assert state.archive("alpha").signed.version == old.archive("alpha").signed.version + 1
    assert [r.info.build for r in releases_of(state, "alpha")] == [
        *(f"1.{minor}" for minor in range(11))
    ]
    # a device that trusted the old layout refreshes into the new one
    assert _fetch(repo, host, tmp_path / "d2", "alpha/1.1/alpha-1.1.img") == image_bytes(
        "alpha/1.1"
    )


def test_model_key_rotation_re_signs_the_bins_with_the_new_key(repo: Repository) -> None:
    for minor in range(9):
        publish(repo, "alpha", f"1.{minor}")
    rotate_key(repo, "alpha")
    state = repo.state()
    archive = state.archive("alpha").signed
    new_keyids = set(state.delegated_role("alpha").keyids)
    assert archive.delegations is not None
    assert archive.delegations.succinct_roles is not None
    assert set(archive.delegations.succinct_roles.keyids) == new_keyids
    for name in state.archive_bins("alpha"):
        md = state.delegated(name)
        assert set(md.signatures) == new_keyids
        archive.verify_delegate(name, md.signed_bytes, md.signatures)


def test_old_metadata_versions_beyond_the_kept_window_are_removed(
    repo: Repository, host: StaticHost, tmp_path: Path
) -> None:
    repo.config = replace(repo.config, kept_snapshots=2)
    for minor in range(6):
        publish(repo, "alpha", f"1.{minor}")
    state = repo.state()
    metadata = repo.layout.metadata_dir
    alpha = state.model("alpha").signed.version
    snapshot = state.snapshot.signed.version
    on_disk = {p.name for p in metadata.iterdir()}
    assert {n for n in on_disk if n.endswith(".alpha.json")} == {
        f"{v}.alpha.json" for v in range(alpha - 2, alpha + 1)
    }
    assert {n for n in on_disk if n.endswith(".snapshot.json")} == {
        f"{v}.snapshot.json" for v in range(snapshot - 2, snapshot + 1)
    }
    assert {n for n in on_disk if n.endswith(".root.json")} == {"1.root.json"}
    assert "1.beta.json" in on_disk  # a role not written since is left alone
    assert _fetch(repo, host, tmp_path / "d1", "alpha/1.5/alpha-1.5.img") == image_bytes(
        "alpha/1.5"
    )


def test_pruning_keeps_what_a_kept_snapshot_names_and_removes_nothing_without_it(
    repo: Repository,
) -> None:
    for minor in range(4):
        publish(repo, "alpha", f"1.{minor}")
    layout = repo.layout
    before = sorted(p.name for p in layout.metadata_dir.iterdir())
    snapshot = repo.state().snapshot.signed.version
    # the oldest snapshot of the window is not on disk: nothing can be judged unneeded
    layout.metadata_file("snapshot", snapshot - 3).rename(layout.home / "aside.json")
    assert prune_unreachable(layout, snapshot, kept=3) == 0
    (layout.home / "aside.json").rename(layout.metadata_file("snapshot", snapshot - 3))
    assert sorted(p.name for p in layout.metadata_dir.iterdir()) == before
    # with it: older snapshots go, and each role's versions below the one it names
    named = repo.state().snapshot.signed.meta  # the newest; the window's oldest names less
    assert prune_unreachable(layout, snapshot, kept=3) > 0
    after = {p.name for p in layout.metadata_dir.iterdir()}
    assert {n for n in after if n.endswith(".snapshot.json")} == {
        f"{v}.snapshot.json" for v in range(snapshot - 3, snapshot + 1)
    }
    assert "1.root.json" in after
    assert f"{named['alpha.json'].version}.alpha.json" in after
    assert f"{named['beta.json'].version}.beta.json" in after
    assert prune_unreachable(layout, snapshot, kept=3) == 0  # nothing left to remove


def test_a_new_model_is_born_with_empty_bins_signed_by_its_key(repo: Repository) -> None:
    state = repo.state()
    bins = state.archive_bins("beta")
    assert bins == [f"beta.archive-{n:x}" for n in range(16)]
    archive: Targets = state.archive("beta").signed
    for name in bins:
        md = state.delegated(name)
        assert md.signed.targets == {}
        assert md.signed.version == 1
        archive.verify_delegate(name, md.signed_bytes, md.signatures)
    assert archive_role("beta") in state.delegated_roles()
