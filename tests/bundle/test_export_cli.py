"""``patchline bundle``: init-key names the offline key in root; export writes a whole
bundle or refuses clearly with nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from tuf.api.metadata import Metadata, Root

from patchline.cli.main import main
from patchline.repository import Repository
from patchline.wire.offline import OFFLINE_FIELD, offline_keys
from tests.conftest import publish, tree_digest


def run(home: Path, *args: str) -> int:
    return main(["--home", str(home), *args])


def test_init_names_an_offline_key_in_root_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path / "r")]) == 0
    root = Metadata[Root].from_bytes((tmp_path / "r/public/metadata/1.root.json").read_bytes())
    assert len(offline_keys(root.signed)) == 1
    assert "180d" in (tmp_path / "r/patchline.toml").read_text()


def test_init_key_adds_the_offline_key_to_a_new_root_once(
    repo: Repository, capsys: pytest.CaptureFixture[str]
) -> None:
    home = repo.layout.home
    assert OFFLINE_FIELD not in repo.state().root.signed.unrecognized_fields

    assert run(home, "bundle", "init-key") == 0
    assert "root version 2" in capsys.readouterr().out
    assert len(offline_keys(repo.state().root.signed)) == 1
    before = tree_digest(home / "public")
    assert run(home, "bundle", "init-key") == 4
    assert "already names an offline key" in capsys.readouterr().err
    assert tree_digest(home / "public") == before


def test_export_writes_roots_metadata_offline_files_and_the_image(
    offline_repo: Repository, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(offline_repo, "alpha", "1.1")
    out = tmp_path / "card"

    assert run(offline_repo.layout.home, "bundle", "export", "--model", "alpha", str(out)) == 0

    assert "alpha build 1.1" in capsys.readouterr().out
    names = sorted(p.name for p in (out / "metadata").iterdir())
    assert {"1.root.json", "2.root.json", "offline-snapshot.json", "offline-targets.json"} <= set(
        names
    )
    assert any(n.endswith(".alpha.json") for n in names)
    assert any(n.endswith(".targets.json") for n in names)
    assert len(list((out / "targets").rglob("*.img"))) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "gamma"], "unknown model 'gamma'"),
        (["--model", "alpha", "--build", "7.7"], "no build '7.7'"),
        (["--model", "beta"], "has no releases"),
    ],
)
def test_export_refuses_unknown_model_or_build_and_writes_nothing(
    offline_repo: Repository,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    publish(offline_repo, "alpha", "1.1")
    out = tmp_path / "card"

    assert run(offline_repo.layout.home, "bundle", "export", *args, str(out)) == 4

    assert message in capsys.readouterr().err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".card")] == []


def test_export_refuses_a_folder_that_is_not_empty_and_leaves_it_alone(
    offline_repo: Repository, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(offline_repo, "alpha", "1.1")
    out = tmp_path / "card"
    out.mkdir()
    (out / "photo.jpg").write_bytes(b"holiday")

    assert run(offline_repo.layout.home, "bundle", "export", "--model", "alpha", str(out)) == 4

    assert "is not an empty folder" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["photo.jpg"]


def test_export_without_an_offline_key_says_how_to_make_one(
    repo: Repository, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(repo, "alpha", "1.1")

    assert run(repo.layout.home, "bundle", "export", "--model", "alpha", str(tmp_path / "c")) == 4

    assert "patchline bundle init-key" in capsys.readouterr().err
