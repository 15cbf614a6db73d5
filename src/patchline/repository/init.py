"""Creating a new repository: keys for every role, and version 1 of each role signed."""

from __future__ import annotations

from pathlib import Path

from tuf.api.metadata import Metadata, MetaFile, Role, Root, Snapshot, Targets, Timestamp

from patchline.clock import Clock, SystemClock
from patchline.errors import RepositoryExistsError, UsageError
from patchline.repository.config import RepositoryConfig
from patchline.repository.keyring import Keyring
from patchline.repository.layout import RepositoryLayout
from patchline.repository.passphrases import PassphraseSource
from patchline.repository.publisher import Repository, Transaction
from patchline.repository.state import RepositoryState
from patchline.settings import Settings
from patchline.wire.offline import OFFLINE_FIELD, OFFLINE_ROLE, offline_field


def init_repository(
    home: Path,
    config: RepositoryConfig,
    *,
    root_keys: int = 3,
    settings: Settings | None = None,
    passphrases: PassphraseSource | None = None,
    clock: Clock | None = None,
    offline_key: bool = False,
) -> Repository:
    """Create a repository in ``home``: keys, settings, and a first signed state.

    Refuses a directory that already holds a repository, and a threshold that the
    number of root keys cannot meet. With ``offline_key``, root also names a key for
    offline bundles (``patchline.repository.bundles``). ``settings`` (the KDF cost of
    the new key files) defaults to the built-in values; no environment is read here.
    """
    if not 1 <= config.root_threshold <= root_keys:
        raise UsageError(
            f"a root threshold of {config.root_threshold} cannot be met by {root_keys} keys",
            hint="choose 1 <= threshold <= number of root keys (default 2 of 3)",
        )
    if root_keys > 15:
        raise UsageError("more than 15 root keys is not supported")
    layout = RepositoryLayout(home)
    if layout.config_file.exists() or layout.metadata_dir.exists():
        raise RepositoryExistsError(f"{home} already holds a Patchline repository")
    if config.keys_dir.resolve().is_relative_to(layout.public_dir.resolve()):
        raise UsageError("the key directory must not be inside the public tree")
    keys_dir = config.keys_dir
    if keys_dir.exists() and any(keys_dir.iterdir()):
        raise RepositoryExistsError(f"key directory {keys_dir} is not empty")

    settings = settings or Settings()
    clock = clock or SystemClock()
    passphrases = passphrases or PassphraseSource()
    keyring = Keyring(keys_dir, passphrases, settings.kdf_log2n)
    # Ask for every passphrase before anything is written, so a refusal leaves nothing.
    roles = ("root", "targets", "snapshot", "timestamp")
    for role in (*roles, OFFLINE_ROLE) if offline_key else roles:
        passphrases.for_role(role, new=True)

    now = clock.now().replace(microsecond=0)
    root = Root(version=1, expires=now, consistent_snapshot=True)
    root_keyids = []
    for _ in range(root_keys):
        key = keyring.create("root", now)
        root.add_key(key, "root")
        root_keyids.append(key.keyid)
    root.roles["root"] = Role(root_keyids, config.root_threshold)
    for role in ("targets", "snapshot", "timestamp"):
        root.add_key(keyring.create(role, now), role)
    if offline_key:
        root.unrecognized_fields[OFFLINE_FIELD] = offline_field(keyring.create(OFFLINE_ROLE, now))

    home.mkdir(parents=True, exist_ok=True)
    layout.targets_dir.mkdir(parents=True, exist_ok=True)
    config.save(layout.config_file)
    repo = Repository(layout, config, keyring, clock)
    state = RepositoryState(
        layout,
        root=Metadata(root),
        timestamp=Metadata(Timestamp(version=1, expires=now, snapshot_meta=MetaFile(1))),
        snapshot=Metadata(Snapshot(version=1, expires=now, meta={})),
        targets=Metadata(Targets(version=1, expires=now)),
    )
    Transaction(repo, state, new_roles=("root", "targets", "snapshot", "timestamp")).commit()
    return repo
