from datetime import date
from pathlib import Path

import pytest

from patchline.errors import ImageError, ReleaseRejectedError, UnknownModelError
from patchline.repository import ReleaseRequest, Repository, add_release, releases_of
from patchline.wire.release import Eligibility, ReleaseInfo, UpdateClass
from tests.conftest import image_bytes, publish, tree_digest


def test_release_is_stored_by_hash_and_signed_with_its_facts(repo: Repository) -> None:
    publish(
        repo,
        "alpha",
        "1.0",
        "2026-01-01",
        notes="first",
        eligibility=Eligibility(regions_excluded=("KP",), valid_until=date(2027, 1, 1)),
    )
    state = repo.state()
    target = state.model("alpha").signed.targets["alpha/1.0/alpha-1.0.img"]
    stored = repo.layout.target_file(target.path, target.hashes["sha256"])
    assert stored.read_bytes() == image_bytes("alpha/1.0")
    assert stored.name.startswith(target.hashes["sha256"])
    info = ReleaseInfo.from_custom(target.custom)
    assert info.build == "1.0"
    assert info.update_class is UpdateClass.SECURITY
    assert info.eligibility.regions_excluded == ("KP",)
    assert info.notes == "first"
    assert state.snapshot.signed.meta["alpha.json"].version == 2
    assert state.timestamp.signed.snapshot_meta.version == state.snapshot.signed.version


def test_a_release_touches_only_its_models_role(repo: Repository) -> None:
    before = repo.state()
    publish(repo, "alpha", "1.0")
    after = repo.state()
    assert after.targets.signed.version == before.targets.signed.version
    assert after.model("beta").signed.version == before.model("beta").signed.version
    assert after.model("alpha").signed.version == before.model("alpha").signed.version + 1


def test_releases_list_in_build_order(repo: Repository) -> None:
    for build in ("1.9", "1.10", "2.0"):
        publish(repo, "alpha", build)
    assert [r.info.build for r in releases_of(repo.state(), "alpha")] == ["1.9", "1.10", "2.0"]


def _request(repo: Repository, tmp: Path, **changes: object) -> ReleaseRequest:
    image = tmp / "image.img"
    if not image.exists():
        image.write_bytes(b"x" * 1000)
    values: dict[str, object] = {
        "image": image,
        "model": "alpha",
        "build": "2.0",
        "security_patch_level": date(2026, 2, 1),
        "update_class": UpdateClass.SECURITY,
    }
    values.update(changes)
    return ReleaseRequest(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"model": "gamma"}, UnknownModelError, "unknown model 'gamma'"),
        ({"build": "1.0"}, ReleaseRejectedError, "already published"),
        ({"build": "0.9"}, ReleaseRejectedError, "older than alpha's newest build 1.0"),
        (
            {"security_patch_level": date(2025, 12, 1)},
            ReleaseRejectedError,
            "below alpha's newest 2026-01-01",
        ),
        ({"image": Path("/nonexistent/image.img")}, ImageError, "does not exist"),
        ({"image": Path("/")}, ImageError, "not usable"),
    ],
)
def test_bad_releases_are_refused_and_change_nothing(
    repo: Repository,
    tmp_path: Path,
    changes: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    publish(repo, "alpha", "1.0", "2026-01-01")
    before = tree_digest(repo.layout.home)
    with pytest.raises(error, match=message):
        add_release(repo, _request(repo, tmp_path, **changes))
    assert tree_digest(repo.layout.home) == before


def test_empty_and_directory_images_are_refused(repo: Repository, tmp_path: Path) -> None:
    empty = tmp_path / "empty.img"
    empty.write_bytes(b"")
    folder = tmp_path / "folder.img"
    folder.mkdir()
    before = tree_digest(repo.layout.home)
    with pytest.raises(ImageError, match="empty"):
        add_release(repo, _request(repo, tmp_path, image=empty))
    with pytest.raises(ImageError, match="directory"):
        add_release(repo, _request(repo, tmp_path, image=folder))
    assert tree_digest(repo.layout.home) == before


def test_downgrade_is_allowed_when_asked(repo: Repository, tmp_path: Path) -> None:
    publish(repo, "alpha", "2.0", "2026-03-01")
    add_release(
        repo,
        _request(
            repo, tmp_path, build="1.5", security_patch_level=date(2026, 1, 1), allow_downgrade=True
        ),
    )
    assert [r.info.build for r in releases_of(repo.state(), "alpha")] == ["1.5", "2.0"]


def test_a_failed_signature_leaves_no_image_behind(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree_digest(repo.layout.home)

    def broken_commit(self: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("patchline.repository.publisher.Transaction.commit", broken_commit)
    with pytest.raises(OSError, match="disk full"):
        add_release(repo, _request(repo, tmp_path))
    assert tree_digest(repo.layout.home) == before


def test_archived_builds_still_count_for_duplicates_and_order(
    repo: Repository, tmp_path: Path
) -> None:
    for minor in range(10):
        publish(repo, "alpha", f"1.{minor}", f"2026-01-{minor + 1:02d}")
    assert len(releases_of(repo.state(), "alpha")) == 10
    with pytest.raises(ReleaseRejectedError, match="already published"):
        add_release(
            repo,
            _request(
                repo,
                tmp_path,
                build="1.0",
                security_patch_level=date(2026, 2, 1),
                allow_downgrade=True,
            ),
        )


def test_a_higher_patch_level_in_the_archive_still_refuses_a_lower_one(
    repo: Repository, tmp_path: Path
) -> None:
    publish(repo, "alpha", "1.0", "2026-05-01")
    for minor in range(1, 9):  # lower patch levels, allowed: 1.0 moves to the archive
        publish(repo, "alpha", f"1.{minor}", "2026-03-01", allow_downgrade=True)
    assert "alpha/1.0/alpha-1.0.img" in repo.state().archived_targets("alpha")
    with pytest.raises(ReleaseRejectedError, match="below alpha's newest 2026-05-01"):
        add_release(
            repo, _request(repo, tmp_path, build="1.9", security_patch_level=date(2026, 4, 1))
        )
    add_release(repo, _request(repo, tmp_path, build="1.9", security_patch_level=date(2026, 5, 1)))
    assert releases_of(repo.state(), "alpha")[-1].info.build == "1.9"


def test_a_release_gets_deltas_from_the_newest_builds(repo: Repository, tmp_path: Path) -> None:
    import hashlib

    from patchline.delta import apply_delta
    from patchline.wire.release import DeltaTargetInfo

    base = bytes(range(256)) * 4096  # 1 MiB that compresses poorly in pieces
    for build, edit in (("1.0", 0), ("1.1", 1), ("1.2", 2)):
        image = tmp_path / f"alpha-{build}.img"
        data = bytearray(base)
        data[1000 * (edit + 1)] ^= 0xFF
        image.write_bytes(bytes(data))
        published = add_release(
            repo,
            ReleaseRequest(
                image=image,
                model="alpha",
                build=build,
                security_patch_level=date(2026, 1, 1),
                update_class=UpdateClass.SECURITY,
            ),
        )
    assert [d.source_build for d in published.deltas] == ["1.1", "1.0"]  # delta_sources = 2
    targets = repo.state().model("alpha").signed.targets
    delta = targets["alpha/1.2/delta-from-1.0.patch"]
    info = DeltaTargetInfo.from_custom(delta.custom)
    assert info.full_target == "alpha/1.2/alpha-1.2.img"
    assert info.source_sha256 == targets["alpha/1.0/alpha-1.0.img"].hashes["sha256"]
    assert delta.length < published.length // 10
    source = repo.layout.target_file("alpha/1.0/alpha-1.0.img", info.source_sha256)
    patch = repo.layout.target_file(delta.path, delta.hashes["sha256"])
    out = tmp_path / "rebuilt.img"
    apply_delta(
        source, patch, out, expected_sha256=info.full_sha256, expected_length=info.full_length
    )
    assert hashlib.sha256(out.read_bytes()).hexdigest() == published.sha256
    assert [r.info.build for r in releases_of(repo.state(), "alpha")] == ["1.0", "1.1", "1.2"]


def test_no_delta_when_it_would_not_be_smaller(repo: Repository, tmp_path: Path) -> None:
    import os

    for build in ("1.0", "1.1"):
        image = tmp_path / f"alpha-{build}.img"
        image.write_bytes(os.urandom(64 * 1024))
        published = add_release(
            repo,
            ReleaseRequest(
                image=image,
                model="alpha",
                build=build,
                security_patch_level=date(2026, 1, 1),
                update_class=UpdateClass.SECURITY,
            ),
        )
    assert published.deltas == ()
    assert not any("delta" in p for p in repo.state().model("alpha").signed.targets)
