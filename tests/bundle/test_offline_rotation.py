"""``patchline key rotate offline`` revokes bundles: a device that has the new root (from
any online refresh) refuses a bundle signed with the old offline key, saying to get a
newer bundle, and installs one exported after the rotation."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from tuf.api.metadata import Metadata, Root

from patchline.agent import Agent, DeviceDir
from patchline.agent.state import load_state
from patchline.cli.main import main
from patchline.clock import FixedClock
from patchline.errors import BundleError, NoUpdateSourceError, UsageError
from patchline.repository import Repository, rotate_key
from patchline.repository.bundles import export_bundle
from patchline.wire.offline import OFFLINE_FIELD, offline_keys
from tests.agent.conftest import hosts  # noqa: F401  (a fixture, shared)
from tests.agent.hosts import RangeHost
from tests.conftest import START, open_repo, publish


def _offline_keyids(repo: Repository) -> list[str]:
    return [key.keyid for key in offline_keys(repo.state().root.signed)]


def test_rotating_the_offline_key_replaces_it_under_a_new_root_signed_by_both_roots(
    offline_repo: Repository, capsys: pytest.CaptureFixture[str]
) -> None:
    [old] = _offline_keyids(offline_repo)
    version = offline_repo.state().root.signed.version
    capsys.readouterr()

    code = main(["--home", str(offline_repo.layout.home), "key", "rotate", "offline"])

    out = capsys.readouterr().out
    assert code == 0, out
    repo = open_repo(offline_repo.layout.home, FixedClock(START))
    [new] = _offline_keyids(repo)
    assert new != old
    assert f"Rotated offline key {old[:12]} -> {new[:12]}" in out
    assert "refuse every bundle signed with the old offline key" in out
    assert "patchline bundle export" in out
    root = repo.state().root
    assert root.signed.version == version + 1
    assert root.signed.unrecognized_fields[OFFLINE_FIELD]["threshold"] == 1
    before = Metadata[Root].from_bytes(repo.layout.metadata_file("root", version).read_bytes())
    before.signed.verify_delegate("root", root.signed_bytes, root.signatures)
    root.signed.verify_delegate("root", root.signed_bytes, root.signatures)
    assert not repo.keyring.has(old)  # destroyed once the new root was published
    assert repo.keyring.has(new)


def test_rotation_by_key_prefix_and_refusals_change_nothing(offline_repo: Repository) -> None:
    [old] = _offline_keyids(offline_repo)
    with pytest.raises(UsageError, match="no single key starting with"):
        rotate_key(offline_repo, "offline", "0000")
    assert _offline_keyids(offline_repo) == [old]
    result = rotate_key(offline_repo, "offline", old[:10])
    assert result.retired == (old,)
    assert _offline_keyids(offline_repo) == list(result.added)


def test_a_repository_without_an_offline_key_says_how_to_make_one(
    repo: Repository, capsys: pytest.CaptureFixture[str]
) -> None:
    version = repo.state().root.signed.version
    with pytest.raises(BundleError) as refused:
        rotate_key(repo, "offline")
    assert refused.value.hint == "create one with: patchline bundle init-key"
    assert main(["--home", str(repo.layout.home), "key", "rotate", "offline"]) == 4
    assert "patchline bundle init-key" in capsys.readouterr().err
    assert repo.state().root.signed.version == version


def test_a_device_with_the_new_root_refuses_an_old_bundle_and_installs_a_new_one(
    offline_repo: Repository,
    make_device: Callable[..., DeviceDir],
    hosts: Callable[..., RangeHost],  # noqa: F811
    tmp_path: Path,
) -> None:
    publish(offline_repo, "alpha", "1.1", spl="2026-02-01")
    old_card = tmp_path / "old-card"
    export_bundle(offline_repo, "alpha", old_card)  # signed with the offline key in use now
    rotation = rotate_key(offline_repo, "offline")
    # A device already running 1.1 refreshes online and so trusts the new root.
    server = hosts(offline_repo.layout.public_dir)
    device = make_device(build="1.1", spl="2026-02-01", mirrors=[server.url])
    clock = FixedClock(START)
    assert Agent(device, clock=clock).update().status == "up-to-date"
    trusted = json.loads((device.metadata_dir / "root.json").read_bytes())
    assert trusted["signed"]["version"] == rotation.root_version

    publish(offline_repo, "alpha", "1.2", spl="2026-03-01")
    config = device.load_config()
    device.save_config(msgspec.structs.replace(config, mirrors=[], bundles=[str(old_card)]))
    # The old bundle, even with the new root copied onto it, is refused.
    copied_root = old_card / "metadata" / f"{rotation.root_version}.root.json"
    copied_root.write_bytes(
        offline_repo.layout.metadata_file("root", rotation.root_version).read_bytes()
    )
    with pytest.raises(NoUpdateSourceError) as refused:
        Agent(device, clock=clock).update()
    assert "not signed by the offline key" in refused.value.message
    assert "ask for a newer bundle" in refused.value.message
    copied_root.unlink()
    with pytest.raises(NoUpdateSourceError) as refused:
        Agent(device, clock=clock).update()
    assert f"older than version {rotation.root_version}" in refused.value.message
    assert "ask for a newer bundle" in refused.value.message
    assert load_state(device).running.build == "1.1"

    new_card = tmp_path / "new-card"
    export_bundle(offline_repo, "alpha", new_card)
    device.save_config(msgspec.structs.replace(config, mirrors=[], bundles=[str(new_card)]))
    result = Agent(device, clock=clock).update()
    assert (result.status, result.build) == ("installed", "1.2")
