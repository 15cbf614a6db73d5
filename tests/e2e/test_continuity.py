"""A named successor takes over signing; devices shipped long before follow it unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata, Root, Targets

from patchline.clock import FixedClock
from patchline.demo.static_host import StaticHost
from patchline.errors import ContinuityError, SigningError
from patchline.repository import Repository, rotate_key
from patchline.repository.continuity import add_successor, handover
from patchline.repository.keyfile import generate_key
from patchline.repository.passphrases import PassphraseSource
from patchline.repository.successors import successor_keyids
from patchline.settings import Settings
from tests.conftest import PASSPHRASE, image_bytes, open_repo, publish, tree_digest
from tests.e2e.test_tuf_client import device, download, shipped_root


def successor_home(repo: Repository, tmp_path: Path) -> Path:
    """What the successor starts from: a copy of the public tree, nothing else."""
    home = tmp_path / "successor-home"
    shutil.copytree(repo.layout.public_dir, home / "public")
    return home


def take_over(home: Path, keys_dir: Path, clock: FixedClock, name: str = "carrier") -> None:
    passphrases = PassphraseSource({"PATCHLINE_PASSPHRASE": PASSPHRASE}, interactive=False)
    handover(
        home,
        name,
        keys_dir,
        settings=Settings(kdf_log2n=10),
        passphrases=passphrases,
        clock=clock,
    )


def public_key_file(path: Path, count: int) -> Path:
    """A JSON file listing ``count`` new public keys, as a successor would hand them over."""
    keys = [generate_key()[0] for _ in range(count)]
    path.write_text(json.dumps([{"keyid": k.keyid, **k.to_dict()} for k in keys]))
    return path


def verify(delegator: Root | Targets, role: str, md: Metadata[Any]) -> None:
    """Raise UnsignedMetadataError unless ``delegator``'s keys for ``role`` signed ``md``."""
    delegator.verify_delegate(role, md.signed_bytes, md.signatures)


def test_a_device_shipped_before_the_successor_updates_from_the_successor(
    repo: Repository, host: StaticHost, tmp_path: Path, clock: FixedClock
) -> None:
    root_v1 = shipped_root(repo)
    publish(repo, "alpha", "1.0")
    early = device(tmp_path, "early", host, root_v1)
    assert download(early, "alpha/1.0/alpha-1.0.img") == image_bytes("alpha/1.0")
    keys = tmp_path / "carrier-keys"
    added = add_successor(repo, "carrier", generate_into=keys)
    assert not set(added.keyids) & set(Metadata[Root].from_bytes(root_v1).signed.keys)

    home = successor_home(repo, tmp_path)
    take_over(home, keys, clock)
    successor = open_repo(home, clock)
    publish(successor, "alpha", "2.0")

    successor_host = StaticHost(successor.layout.public_dir).start()
    try:
        fresh = device(tmp_path, "fresh", successor_host, root_v1)
        assert download(fresh, "alpha/2.0/alpha-2.0.img") == image_bytes("alpha/2.0")
        # The device that had already followed the maker's newest root follows too.
        updated = device(tmp_path, "early", successor_host, root_v1)
        assert download(updated, "alpha/2.0/alpha-2.0.img") == image_bytes("alpha/2.0")
    finally:
        successor_host.stop()


def test_the_makers_old_online_keys_no_longer_verify_new_metadata(
    repo: Repository, tmp_path: Path, clock: FixedClock
) -> None:
    publish(repo, "alpha", "1.0")
    keys = tmp_path / "carrier-keys"
    add_successor(repo, "carrier", generate_into=keys)
    before = repo.state()
    home = successor_home(repo, tmp_path)
    take_over(home, keys, clock)
    successor = open_repo(home, clock)
    publish(successor, "alpha", "2.0")
    after = successor.state()

    for role in ("targets", "snapshot", "timestamp"):
        old = set(before.root.signed.roles[role].keyids)
        assert old
        assert not old & set(after.root.signed.roles[role].keyids)
    with pytest.raises(UnsignedMetadataError):
        verify(before.root.signed, "timestamp", after.timestamp)
    with pytest.raises(UnsignedMetadataError):
        verify(before.root.signed, "targets", after.targets)
    with pytest.raises(UnsignedMetadataError):
        verify(before.targets.signed, "alpha", after.model("alpha"))
    verify(after.root.signed, "timestamp", after.timestamp)  # the new keys do

    # The maker's keyring can no longer publish to the successor's repository.
    digest = tree_digest(home)
    maker = Repository(successor.layout, repo.config, repo.keyring, clock)
    with pytest.raises(SigningError):
        publish(maker, "alpha", "3.0")
    assert tree_digest(home) == digest


def test_a_handover_without_a_threshold_of_the_successors_keys_changes_nothing(
    repo: Repository, tmp_path: Path, clock: FixedClock
) -> None:
    publish(repo, "alpha", "1.0")
    keys = tmp_path / "carrier-keys"
    add_successor(repo, "carrier", generate_into=keys)
    home = successor_home(repo, tmp_path)
    half = tmp_path / "half-keys"
    shutil.copytree(keys, half)
    next(half.glob("*.key")).unlink()  # one of the two keys is missing
    empty = tmp_path / "no-keys"
    digest, half_digest = tree_digest(home), tree_digest(half)

    for wrong in (repo.keyring.keys_dir, half, empty):  # the maker's keys are not the carrier's
        with pytest.raises(SigningError, match="holds"):
            take_over(home, wrong, clock)
    with pytest.raises(ContinuityError, match="no successor 'escrow'"):
        take_over(home, keys, clock, name="escrow")
    assert tree_digest(home) == digest
    assert tree_digest(half) == half_digest
    assert not empty.exists()


def test_add_successor_gives_it_as_many_root_keys_as_the_threshold(
    repo: Repository, tmp_path: Path
) -> None:
    threshold = repo.state().root.signed.roles["root"].threshold
    added = add_successor(repo, "carrier", generate_into=tmp_path / "carrier-keys")
    root = repo.state().root.signed
    assert len(added.keyids) == threshold == 2
    assert set(added.keyids) <= set(root.roles["root"].keyids)
    assert successor_keyids(root) == set(added.keyids)


def test_add_successor_refusals_leave_the_repository_unchanged(
    repo: Repository, tmp_path: Path
) -> None:
    keys = tmp_path / "carrier-keys"
    add_successor(repo, "carrier", generate_into=keys)
    digest = tree_digest(repo.layout.home)
    one_key = public_key_file(tmp_path / "one.json", 1)
    with pytest.raises(ContinuityError, match="already a named successor"):
        add_successor(repo, "carrier", generate_into=tmp_path / "again")
    with pytest.raises(ContinuityError, match="threshold is 2"):
        add_successor(repo, "escrow", key_files=[one_key])
    with pytest.raises(ContinuityError, match="already in root"):
        add_successor(repo, "escrow", key_files=[keys / "successor-public-keys.json"])
    assert tree_digest(repo.layout.home) == digest
    assert not (tmp_path / "again").exists()


def test_a_successor_named_by_its_public_keys_gets_root_keys(
    repo: Repository, tmp_path: Path
) -> None:
    added = add_successor(repo, "escrow", key_files=[public_key_file(tmp_path / "k.json", 2)])
    assert set(added.keyids) <= set(repo.state().root.signed.roles["root"].keyids)
    assert added.root_version == 2


def test_after_a_handover_the_successor_can_remove_the_makers_root_keys(
    repo: Repository, tmp_path: Path, clock: FixedClock
) -> None:
    root_v1 = shipped_root(repo)
    keys = tmp_path / "carrier-keys"
    add_successor(repo, "carrier", generate_into=keys)
    maker_root_keys = set(repo.state().root.signed.roles["root"].keyids) - successor_keyids(
        repo.state().root.signed
    )
    home = successor_home(repo, tmp_path)
    take_over(home, keys, clock)
    successor = open_repo(home, clock)
    for keyid in sorted(maker_root_keys):
        rotate_key(successor, "root", keyid)
    publish(successor, "alpha", "1.0")
    assert not maker_root_keys & set(successor.state().root.signed.roles["root"].keyids)
    successor_host = StaticHost(successor.layout.public_dir).start()
    try:
        fresh = device(tmp_path, "fresh", successor_host, root_v1)
        assert download(fresh, "alpha/1.0/alpha-1.0.img") == image_bytes("alpha/1.0")
    finally:
        successor_host.stop()


def test_rotating_all_root_keys_keeps_the_successors(repo: Repository, tmp_path: Path) -> None:
    added = add_successor(repo, "carrier", generate_into=tmp_path / "carrier-keys")
    result = rotate_key(repo, "root")
    assert not set(added.keyids) & set(result.retired)
    assert set(added.keyids) <= set(repo.state().root.signed.roles["root"].keyids)
