import json
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata, Root

from patchline.clock import FixedClock
from patchline.errors import PassphraseError, RepositoryExistsError, UsageError
from patchline.repository import Repository, RepositoryConfig, init_repository
from patchline.repository.keyfile import read_key_file
from patchline.repository.passphrases import PassphraseSource
from patchline.settings import Settings
from tests.conftest import PASSPHRASE


def _init(home: Path, clock: FixedClock, **kwargs: object) -> Repository:
    passphrases = PassphraseSource({"PATCHLINE_PASSPHRASE": PASSPHRASE}, interactive=False)
    config = kwargs.pop("config", RepositoryConfig(keys_dir=home / "keys"))
    return init_repository(
        home,
        config,  # type: ignore[arg-type]
        settings=Settings(kdf_log2n=10),
        passphrases=passphrases,
        clock=clock,
        **kwargs,  # type: ignore[arg-type]
    )


def test_init_signs_version_one_of_every_role(tmp_path: Path, clock: FixedClock) -> None:
    repo = _init(tmp_path / "r", clock)
    state = repo.state()
    assert state.root.signed.version == 1
    assert state.root.signed.consistent_snapshot is True
    assert state.root.signed.roles["root"].threshold == 2
    assert len(state.root.signed.roles["root"].keyids) == 3
    for role in ("targets", "snapshot", "timestamp"):
        assert len(state.root.signed.roles[role].keyids) == 1
    names = sorted(p.name for p in repo.layout.metadata_dir.iterdir())
    assert names == ["1.root.json", "1.snapshot.json", "1.targets.json", "timestamp.json"]
    root = Metadata[Root].from_bytes((repo.layout.metadata_dir / "1.root.json").read_bytes())
    root.verify_delegate("root", root)  # self-signed by a threshold


def test_default_expiries_are_those_a_security_engineer_expects(
    tmp_path: Path, clock: FixedClock
) -> None:
    state = _init(tmp_path / "r", clock).state()
    now = clock.now()
    assert (state.root.signed.expires - now).days == 365
    assert (state.targets.signed.expires - now).days == 90
    assert (state.snapshot.signed.expires - now).days == 7
    assert (state.timestamp.signed.expires - now).days == 1


def test_private_keys_live_apart_and_encrypted(tmp_path: Path, clock: FixedClock) -> None:
    repo = _init(tmp_path / "r", clock)
    public_files = [p for p in repo.layout.public_dir.rglob("*") if p.is_file()]
    assert all(p.suffix == ".json" for p in public_files)
    key_files = sorted(repo.config.keys_dir.glob("*.key"))
    assert len(key_files) == 6
    raw = key_files[0].read_text()
    assert "PRIVATE KEY" not in raw
    assert json.loads(raw)["kdf"]["name"] == "scrypt"
    assert oct(key_files[0].stat().st_mode & 0o777) == "0o600"
    with pytest.raises(PassphraseError, match="does not open"):
        read_key_file(key_files[0], "wrong passphrase")
    assert read_key_file(key_files[0], PASSPHRASE) is not None


def test_keys_can_live_in_another_directory(tmp_path: Path, clock: FixedClock) -> None:
    keys = tmp_path / "offline-media"
    repo = _init(tmp_path / "r", clock, config=RepositoryConfig(keys_dir=keys))
    assert len(list(keys.glob("*.key"))) == 6
    assert 'keys_dir = "' in repo.layout.config_file.read_text()
    assert repo.state().root.signed.version == 1


def test_init_refuses_an_existing_repository(tmp_path: Path, clock: FixedClock) -> None:
    _init(tmp_path / "r", clock)
    with pytest.raises(RepositoryExistsError):
        _init(tmp_path / "r", clock)


@pytest.mark.parametrize(("keys", "threshold"), [(3, 4), (3, 0), (1, 2)])
def test_init_refuses_a_threshold_keys_cannot_meet(
    tmp_path: Path, clock: FixedClock, keys: int, threshold: int
) -> None:
    home = tmp_path / "r"
    config = RepositoryConfig(keys_dir=home / "keys", root_threshold=threshold)
    with pytest.raises(UsageError, match="threshold"):
        _init(home, clock, config=config, root_keys=keys)
    assert not home.exists()


def test_init_refuses_keys_inside_the_public_tree(tmp_path: Path, clock: FixedClock) -> None:
    home = tmp_path / "r"
    with pytest.raises(UsageError, match="public tree"):
        _init(home, clock, config=RepositoryConfig(keys_dir=home / "public" / "keys"))
    assert not home.exists()


def test_init_without_a_passphrase_writes_nothing(tmp_path: Path, clock: FixedClock) -> None:
    home = tmp_path / "r"
    with pytest.raises(PassphraseError, match="PATCHLINE_PASSPHRASE_ROOT"):
        init_repository(
            home,
            RepositoryConfig(keys_dir=home / "keys"),
            settings=Settings(kdf_log2n=10),
            passphrases=PassphraseSource({}, interactive=False),
            clock=clock,
        )
    assert not home.exists()


def test_each_role_may_have_its_own_passphrase(tmp_path: Path, clock: FixedClock) -> None:
    home = tmp_path / "r"
    env = {"PATCHLINE_PASSPHRASE": "shared", "PATCHLINE_PASSPHRASE_ROOT": "root only"}
    repo = init_repository(
        home,
        RepositoryConfig(keys_dir=home / "keys"),
        settings=Settings(kdf_log2n=10),
        passphrases=PassphraseSource(env, interactive=False),
        clock=clock,
    )
    root_key = next(e for e in repo.keyring.entries() if e.role == "root")
    path = home / "keys" / root_key.uri.partition(":")[2]
    with pytest.raises(PassphraseError):
        read_key_file(path, "shared")
    assert read_key_file(path, "root only") is not None


def test_a_repository_made_with_relative_paths_opens_from_anywhere(
    tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import open_repo

    monkeypatch.chdir(tmp_path)
    _init(Path("data/repo"), clock, config=RepositoryConfig(keys_dir=Path("data/repo/keys")))
    assert 'keys_dir = "keys"' in (tmp_path / "data/repo/patchline.toml").read_text()
    monkeypatch.chdir("/")
    repo = open_repo(tmp_path / "data/repo", clock)
    assert repo.keyring.keys_dir == tmp_path / "data/repo/keys"
    assert all(repo.keyring.has(k) for k in repo.state().root.signed.roles["root"].keyids)
