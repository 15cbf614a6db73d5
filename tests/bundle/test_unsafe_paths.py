"""A target path signed in metadata is a name, not a file-system path: one holding
``..`` is refused before any file is opened, by the exporter, the publisher and the agent
alike (the mirror's refusal is in tests/mirror/test_refusals.py), with an error naming the path."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from patchline.agent import Agent, DeviceDir
from patchline.agent.state import load_state
from patchline.clock import FixedClock
from patchline.errors import RepositoryError, UpdateRefusedError
from patchline.repository import Repository
from patchline.repository.bundles import export_bundle
from tests.conftest import publish, tree_digest
from tests.signing import sign_release_at

ESCAPING = "alpha/../../../escaped/evil.img"


def test_export_refuses_a_signed_target_path_that_leaves_the_bundle(
    offline_repo: Repository, tmp_path: Path
) -> None:
    publish(offline_repo, "alpha", "1.1")
    sha256, data = sign_release_at(offline_repo, ESCAPING, "9.0")
    # where the stored file would be if the path were followed: outside the repository
    outside = offline_repo.layout.home / "escaped" / f"{sha256}.evil.img"
    outside.parent.mkdir()
    outside.write_bytes(data)
    card = tmp_path / "card"

    with pytest.raises(RepositoryError) as refused:
        export_bundle(offline_repo, "alpha", card)

    assert f"unsafe path {ESCAPING!r} in signed metadata: it holds '..'" in refused.value.message
    assert not (tmp_path / "escaped").exists()
    assert not card.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".card")] == []


def test_publishing_refuses_to_read_a_signed_source_path_outside_the_targets_folder(
    repo: Repository,
) -> None:
    publish(repo, "alpha", "1.0")
    sha256, data = sign_release_at(repo, ESCAPING, "1.5")
    outside = repo.layout.home / "escaped" / f"{sha256}.evil.img"
    outside.parent.mkdir()
    outside.write_bytes(data)
    before = tree_digest(repo.layout.public_dir)

    with pytest.raises(RepositoryError) as refused:
        publish(repo, "alpha", "2.0", "2026-04-01")

    assert f"unsafe path {ESCAPING!r} in signed metadata" in refused.value.message
    assert tree_digest(repo.layout.public_dir) == before


def test_the_agent_refuses_a_card_whose_signed_release_path_holds_dot_dot(
    repo: Repository, make_device: Callable[..., DeviceDir], tmp_path: Path
) -> None:
    # three segments, so the model's delegation (alpha/*/*) covers it
    path = "alpha/../alpha-9.0.img"
    sha256, data = sign_release_at(repo, path, "9.0")
    card = tmp_path / "card"
    shutil.copytree(repo.layout.public_dir, card)
    # the file the path names once '..' is followed, so that following it would install
    (card / "targets" / f"{sha256}.alpha-9.0.img").write_bytes(data)
    device = make_device(bundles=[str(card)])

    with pytest.raises(UpdateRefusedError) as refused:
        Agent(device, clock=FixedClock(repo.clock.now())).update()

    assert refused.value.exit_code == 13
    assert f"unsafe path {path!r} in signed metadata: it holds '..'" in refused.value.message
    assert load_state(device).running.build == "1.0"
