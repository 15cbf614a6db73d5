from __future__ import annotations

from datetime import timedelta

import pytest

from patchline.clock import FixedClock
from patchline.errors import SigningError, UnknownModelError, UsageError
from patchline.repository import Repository, refresh, repository_status, rotate_key
from tests.conftest import open_repo, publish, tree_digest


def test_rotation_replaces_the_key_and_destroys_the_old_one(repo: Repository) -> None:
    old = repo.state().root.signed.roles["timestamp"].keyids[0]
    result = rotate_key(repo, "timestamp")
    state = repo.state()
    assert result.retired == (old,)
    assert state.root.signed.roles["timestamp"].keyids == list(result.added)
    assert not repo.keyring.has(old)
    assert not (repo.config.keys_dir / f"{old}.key").exists()
    assert state.root.signed.version == 2


def test_rotating_one_root_key_by_prefix(repo: Repository) -> None:
    keyids = repo.state().root.signed.roles["root"].keyids
    result = rotate_key(repo, "root", keyids[1][:10])
    new_ids = repo.state().root.signed.roles["root"].keyids
    assert result.retired == (keyids[1],)
    assert keyids[0] in new_ids
    assert keyids[2] in new_ids
    assert result.added[0] in new_ids


def test_model_key_rotation_re_signs_the_model_role(repo: Repository) -> None:
    publish(repo, "alpha", "1.0")
    result = rotate_key(repo, "alpha")
    state = repo.state()
    assert state.targets.signed.delegations is not None
    roles = state.targets.signed.delegations.roles
    assert roles is not None
    assert roles["alpha"].keyids == list(result.added)
    assert state.delegated_role("alpha.archive").keyids == list(result.added)
    assert not repo.keyring.has(result.retired[0])
    assert "alpha/1.0/alpha-1.0.img" in state.model("alpha").signed.targets


@pytest.mark.parametrize(
    ("role", "keyid", "error"),
    [("gamma", None, UnknownModelError), ("timestamp", "ffff", UsageError)],
)
def test_bad_rotation_changes_nothing(
    repo: Repository, role: str, keyid: str | None, error: type[Exception]
) -> None:
    before = tree_digest(repo.layout.home)
    with pytest.raises(error):
        rotate_key(repo, role, keyid)
    assert tree_digest(repo.layout.home) == before


def test_rotation_without_enough_root_keys_is_refused(repo: Repository) -> None:
    root_keys = repo.state().root.signed.roles["root"].keyids
    for keyid in root_keys[:2]:  # two of three root keys taken offline
        (repo.config.keys_dir / f"{keyid}.key").rename(repo.layout.home.parent / f"{keyid}.key")
    before = tree_digest(repo.layout.home)
    with pytest.raises(SigningError, match="root role needs 2 signatures"):
        rotate_key(repo, "timestamp")
    assert tree_digest(repo.layout.home) == before


def test_refresh_re_signs_only_what_is_due(repo: Repository, clock: FixedClock) -> None:
    assert refresh(repo).resigned == {}
    clock.advance(timedelta(hours=13))  # timestamp (1 day) has less than half left
    result = refresh(repo)
    assert list(result.resigned) == ["timestamp"]
    clock.advance(timedelta(days=4))  # snapshot (7 days) too, and the timestamp expired
    result = refresh(repo)
    assert set(result.resigned) == {"snapshot", "timestamp"}
    assert result.resigned["timestamp"].startswith("expired")
    assert repo.state().timestamp.signed.expires > clock.now()


def test_refresh_force_re_signs_online_roles(repo: Repository) -> None:
    version = repo.state().timestamp.signed.version
    assert set(refresh(repo, force_online=True).resigned) == {"snapshot", "timestamp"}
    assert repo.state().timestamp.signed.version == version + 1


def test_status_reports_roles_models_and_expiry_warnings(
    repo: Repository, clock: FixedClock
) -> None:
    publish(repo, "alpha", "1.0", "2026-01-01")
    report = repository_status(repo)
    assert [r.name for r in report.roles] == [
        "root",
        "targets",
        "snapshot",
        "timestamp",
        "alpha",
        "alpha.archive",
        *(f"alpha.archive-{n:x}" for n in range(16)),  # the archive's hash bins
        "beta",
        "beta.archive",
        *(f"beta.archive-{n:x}" for n in range(16)),
    ]
    assert all(r.signatures_ok for r in report.roles)
    alpha = next(m for m in report.models if m.name == "alpha")
    assert (alpha.releases, alpha.newest_build, alpha.newest_patch_level) == (
        1,
        "1.0",
        "2026-01-01",
    )
    assert report.warnings == []  # freshly signed: nothing to say
    clock.advance(timedelta(days=4))
    later = repository_status(open_repo(repo.layout.home, clock)).warnings
    assert any(w.startswith("timestamp expired") for w in later)
    assert any(w.startswith("snapshot expires in 3 days") for w in later)
    clock.advance(timedelta(days=80))
    assert any(w.startswith("targets expires in 6 days") for w in repository_status(repo).warnings)
