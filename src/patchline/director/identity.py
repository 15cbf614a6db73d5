"""The director's own trust root: the keys that sign per-device decisions.

The director is a second TUF trust root beside the image repository (Uptane): its root
key (offline, role ``director-root``) names the online key (role ``director``) that
signs each device's answer. Devices ship with ``HOME/director/root.json`` next to the
image repository's ``1.root.json``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from securesystemslib.signer import Signer
from tuf.api.metadata import Metadata, Root

from patchline.errors import ConfigError, RepositoryExistsError
from patchline.fsutil import write_atomic
from patchline.repository.publisher import Repository

ROOT_ROLE = "director-root"
SIGNING_ROLE = "director"
ROOT_VALIDITY = timedelta(days=5 * 365)


def director_root_path(home: Path) -> Path:
    """Where the director root devices ship with is kept."""
    return home / "director" / "root.json"


def create_director(repo: Repository) -> Metadata[Root]:
    """Make the director's keys and its signed root; refuse if one exists."""
    path = director_root_path(repo.layout.home)
    if path.exists():
        raise RepositoryExistsError(f"a director root already exists at {path}")
    now = repo.clock.now().replace(microsecond=0)
    root_key = repo.keyring.create(ROOT_ROLE, now)
    signing_key = repo.keyring.create(SIGNING_ROLE, now)
    root = Root(expires=now + ROOT_VALIDITY, consistent_snapshot=False)
    root.add_key(root_key, "root")
    for role in ("targets", "snapshot", "timestamp"):
        root.add_key(signing_key, role)
    md = Metadata(root)
    md.sign(repo.keyring.signer(root_key))
    write_atomic(path, md.to_bytes())
    return md


def load_director_root(home: Path) -> Metadata[Root]:
    """Read the director root; raise ConfigError with the fix when there is none."""
    path = director_root_path(home)
    try:
        return Metadata[Root].from_bytes(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(
            f"no director root at {path}", hint="create it with: patchline director init"
        ) from None


def director_signer(repo: Repository, root: Metadata[Root]) -> Signer:
    """Open the online key that signs decisions (its passphrase: PATCHLINE_PASSPHRASE_DIRECTOR)."""
    keyid = root.signed.roles["targets"].keyids[0]
    return repo.keyring.signer(root.signed.keys[keyid])
