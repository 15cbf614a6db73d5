"""Signing continuity: a named successor that can take over if the maker can no longer sign.

``add_successor`` adds the successor's keys to root's root role, as many as root's
threshold, so that the successor alone can sign a new root, and records whose they are
(``patchline.repository.successors``). ``handover`` is run by the successor with only
its own keys: a new root, signed by its keys, replaces every online key (targets,
snapshot, timestamp, each model's, the offline-bundle key) with new keys it makes,
and every role is re-signed under them. A device follows the new root like any key
rotation: it is signed by a threshold of the previous root's root keys and of its own.
See docs/continuity.md for who can do what, and when.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from securesystemslib.signer import Key

from patchline.clock import Clock, SystemClock
from patchline.errors import ContinuityError, RepositoryNotFoundError, SigningError, UsageError
from patchline.fsutil import write_atomic
from patchline.repository.config import RepositoryConfig
from patchline.repository.keyring import Keyring
from patchline.repository.layout import RepositoryLayout
from patchline.repository.passphrases import PassphraseSource
from patchline.repository.publisher import Repository, Transaction
from patchline.repository.rotation import replace_keys
from patchline.repository.successors import SUCCESSOR_ROLE, SUCCESSORS_FIELD, successors
from patchline.settings import Settings
from patchline.wire.offline import OFFLINE_FIELD, OFFLINE_ROLE, offline_field
from patchline.wire.release import check_name

#: The file ``--generate`` writes beside the successor's private keys: its public keys.
PUBLIC_KEYS_FILE = "successor-public-keys.json"
ONLINE_ROLES = ("targets", "snapshot", "timestamp")


@dataclass(frozen=True)
class SuccessorAdded:
    """What ``add_successor`` recorded."""

    name: str
    keyids: tuple[str, ...]
    threshold: int
    root_version: int


@dataclass(frozen=True)
class Handover:
    """What ``handover`` replaced: each role's retired and new key ids."""

    successor: str
    replaced: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]
    root_version: int


def read_public_keys(paths: list[Path]) -> list[Key]:
    """Read public keys from JSON files, each one key ``{"keyid": ..., "keytype": ...}``
    or a list of them. Raises ContinuityError for a file that is missing or malformed."""
    keys: list[Key] = []
    for path in paths:
        try:
            data: Any = json.loads(path.read_bytes())
            items = data if isinstance(data, list) else [data]
            for item in items:
                item = dict(item)
                keys.append(Key.from_dict(str(item.pop("keyid")), item))
        except OSError as exc:
            raise ContinuityError(f"cannot read public key file {path}: {exc}") from None
        except (ValueError, TypeError, KeyError) as exc:
            raise ContinuityError(
                f"{path} is not a public key file: {exc}",
                hint='give a JSON key {"keyid", "keytype", "scheme", "keyval"} or a list of them',
            ) from None
    return keys


def add_successor(
    repo: Repository,
    name: str,
    *,
    key_files: list[Path] | None = None,
    generate_into: Path | None = None,
) -> SuccessorAdded:
    """Name ``name`` as successor in a new root version, with keys read from ``key_files``
    or made encrypted in the empty folder ``generate_into`` (which the successor takes
    away; it also holds ``successor-public-keys.json``).

    The successor is given as many root keys as root's threshold, so it can sign a new
    root alone. Raises UsageError for a bad name or folder, ContinuityError when the
    name is taken, a key is already in root, or fewer distinct keys than the threshold
    are given; SigningError or PassphraseError when the maker's root keys are not here.
    On any refusal the repository is unchanged and no folder is left behind.
    """
    check_name("successor", name)
    if (key_files is None) == (generate_into is None):
        raise UsageError("give the successor's public key files, or a folder to generate into")
    given = read_public_keys(key_files) if key_files is not None else []
    if generate_into is not None:
        _check_new_folder(repo, generate_into)
    with repo.transaction() as tx:
        root = tx.state.root.signed
        threshold = root.roles["root"].threshold
        if name in successors(root):
            raise ContinuityError(f"{name!r} is already a named successor")
        if key_files is not None:
            _check_given(root.keys, given, threshold)
        tx.require_signers(["root"])
        try:
            if generate_into is not None:
                given = _generate(repo, generate_into, threshold)
            edited = tx.edit_root()
            for key in given:
                edited.add_key(key, "root")
            field = successors(edited)
            field[name] = {"keyids": [k.keyid for k in given], "added": _stamp(repo.clock.now())}
            edited.unrecognized_fields[SUCCESSORS_FIELD] = field
            tx.commit()
        except BaseException:
            if generate_into is not None:
                shutil.rmtree(generate_into, ignore_errors=True)
            raise
        return SuccessorAdded(
            name, tuple(k.keyid for k in given), threshold, tx.state.root.signed.version
        )


def handover(
    home: Path,
    successor: str,
    keys_dir: Path,
    *,
    settings: Settings | None = None,
    passphrases: PassphraseSource | None = None,
    clock: Clock | None = None,
) -> Handover:
    """Run by the successor: replace every online key of the repository in ``home`` with
    new keys made in ``keys_dir``, signing the new root with the successor's root keys
    found there. ``home`` needs only the public tree; its settings file, made if
    missing, then names ``keys_dir`` as the repository's keys.

    Raises RepositoryNotFoundError when ``home`` has no public tree, ContinuityError
    for a name root does not list, SigningError when ``keys_dir`` holds fewer of the
    successor's keys than root's threshold, PassphraseError when they will not open.
    On any refusal nothing is written, in ``home`` or in ``keys_dir``. ``settings``
    defaults to the built-in values; no environment is read here.
    """
    layout = RepositoryLayout(home)
    if not layout.timestamp_file.is_file():
        raise RepositoryNotFoundError(
            f"no published repository in {home} ({layout.timestamp_file} is missing)",
            hint="copy or mirror the maker's public tree into HOME/public first",
        )
    settings = settings or Settings()
    config = (
        RepositoryConfig.load(layout.config_file)
        if layout.config_file.is_file()
        else RepositoryConfig(keys_dir=keys_dir)
    )
    config = replace(config, keys_dir=keys_dir)
    keyring = Keyring(keys_dir, passphrases or PassphraseSource(), settings.kdf_log2n)
    repo = Repository(layout, config, keyring, clock or SystemClock())
    with repo.transaction() as tx:
        root = tx.state.root.signed
        entry = successors(root).get(successor)
        if entry is None:
            named = ", ".join(sorted(successors(root))) or "none"
            raise ContinuityError(
                f"root names no successor {successor!r} (named: {named})",
                hint="give the name used with: patchline continuity add-successor",
            )
        held = [k for k in entry["keyids"] if k in root.roles["root"].keyids and keyring.has(k)]
        threshold = root.roles["root"].threshold
        if len(held) < threshold:
            raise SigningError(
                f"a new root needs {threshold} root signatures; {keys_dir} holds {len(held)} "
                f"of {successor}'s root keys",
                hint="give the folder with the successor's keys made by add-successor",
            )
        tx.require_signers(["root"])
        added: list[str] = []
        try:
            replaced = _replace_online_keys(tx, added)
            edited = tx.edit_root()
            field = successors(edited)
            field[successor] = {**field[successor], "took_over": _stamp(repo.clock.now())}
            edited.unrecognized_fields[SUCCESSORS_FIELD] = field
            tx.commit()
        except BaseException:
            for keyid in added:  # never published: forget the new keys again
                keyring.retire(keyid)
            raise
        config.save(layout.config_file)
        return Handover(successor, replaced, tx.state.root.signed.version)


def _replace_online_keys(
    tx: Transaction, added: list[str]
) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    now = tx.repo.clock.now()
    replaced: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    roles = [*ONLINE_ROLES, *tx.state.model_names()]
    for role in roles:
        if role in ONLINE_ROLES:
            old = list(tx.state.root.signed.roles[role].keyids)
        else:
            old = list(tx.state.delegated_role(role).keyids)
        start = len(added)
        replace_keys(tx, role, old, added, now)
        replaced[role] = (tuple(old), tuple(added[start:]))
    root = tx.state.root.signed
    if OFFLINE_FIELD in root.unrecognized_fields:
        key = tx.repo.keyring.create(OFFLINE_ROLE, now)
        added.append(key.keyid)
        old_keyids = tuple(root.unrecognized_fields[OFFLINE_FIELD].get("keyids", []))
        tx.edit_root().unrecognized_fields[OFFLINE_FIELD] = offline_field(key)
        replaced[OFFLINE_ROLE] = (old_keyids, (key.keyid,))
    return replaced


def _check_given(known: dict[str, Key], given: list[Key], threshold: int) -> None:
    keyids = {k.keyid for k in given}
    if len(keyids) != len(given):
        raise ContinuityError("the same successor key is given twice")
    taken = sorted(keyids & set(known))
    if taken:
        raise ContinuityError(f"key {taken[0][:12]} is already in root")
    if len(keyids) < threshold:
        raise ContinuityError(
            f"root's threshold is {threshold}: the successor needs {threshold} keys to sign "
            f"a new root alone, {len(keyids)} given",
            hint="give one --key-file per key (or a file listing them), or use --generate",
        )


def _check_new_folder(repo: Repository, folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageError(f"{folder} is not an empty folder", hint="give a new folder")
    resolved = folder.resolve()
    for inside in (repo.layout.home, repo.keyring.keys_dir):
        if resolved.is_relative_to(inside.resolve()):
            raise UsageError(
                f"{folder} is inside {inside}",
                hint="the successor's keys must leave with the successor: use a separate folder",
            )


def _generate(repo: Repository, folder: Path, count: int) -> list[Key]:
    keyring = repo.keyring.elsewhere(folder)
    keys: list[Key] = [keyring.create(SUCCESSOR_ROLE, repo.clock.now()) for _ in range(count)]
    public = [{"keyid": k.keyid, **k.to_dict()} for k in keys]
    write_atomic(folder / PUBLIC_KEYS_FILE, json.dumps(public, indent=1).encode())
    return keys


def _stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")
