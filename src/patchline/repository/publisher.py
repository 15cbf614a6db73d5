"""Changing a repository: one locked transaction, signed and published in a safe order.

Order of a publish (consistent snapshots; every name but ``timestamp.json`` is new):
target files (by the caller, before commit), a new root if any, model roles, targets,
snapshot, and last ``timestamp.json`` by an atomic rename. A crash at any point
leaves the previous state served whole; the files written before it are unreferenced.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from securesystemslib.signer import Key
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    SuccinctRoles,
    Targets,
)

from patchline.clock import Clock, SystemClock
from patchline.errors import (
    ModelExistsError,
    RepositoryBusyError,
    RepositoryCorruptError,
    RepositoryError,
    RepositoryNotFoundError,
    SigningError,
)
from patchline.fsutil import exclusive_lock, write_atomic
from patchline.repository.config import TOP_LEVEL_ROLES, RepositoryConfig
from patchline.repository.keyring import Keyring
from patchline.repository.layout import RepositoryLayout
from patchline.repository.passphrases import PassphraseSource
from patchline.repository.state import (
    ARCHIVE_SUFFIX,
    RepositoryState,
    archive_model,
    archive_role,
    load_state,
    read_metadata,
)
from patchline.settings import Settings
from patchline.wire.release import check_name, model_lookup_path

LOCK_WAIT_SECONDS = 30.0


def model_paths(role: str) -> list[str]:
    """The target paths a model's role (or its archive) may sign: ``MODEL/BUILD/FILE``.

    The model's role is also delegated its lookup path, which its archive is not, so a
    device can load its model's current releases without ever fetching the archive.
    """
    model = archive_model(role)
    if model is not None:
        return [f"{model}/*/*"]
    return [f"{role}/*/*", model_lookup_path(role)]


@dataclass
class Repository:
    """An opened repository home: where it is, its settings, keys and clock."""

    layout: RepositoryLayout
    config: RepositoryConfig
    keyring: Keyring
    clock: Clock

    @classmethod
    def open(
        cls,
        home: Path,
        settings: Settings | None = None,
        passphrases: PassphraseSource | None = None,
        clock: Clock | None = None,
    ) -> Repository:
        """Open an existing repository; raise RepositoryNotFoundError if ``home`` holds none.
        ``settings`` defaults to the built-in values; no environment is read here."""
        layout = RepositoryLayout(home)
        if not layout.config_file.is_file():
            raise RepositoryNotFoundError(
                f"no Patchline repository in {home} ({layout.config_file.name} is missing)",
                hint="create one with: patchline init DIR, or pass --home DIR",
            )
        settings = settings or Settings()
        config = RepositoryConfig.load(layout.config_file)
        keyring = Keyring(config.keys_dir, passphrases or PassphraseSource(), settings.kdf_log2n)
        return cls(layout, config, keyring, clock or SystemClock())

    def state(self) -> RepositoryState:
        """The last published state (read without the lock: it is immutable once named)."""
        return load_state(self.layout)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Hold the publish lock and yield a transaction on the current state.

        Nothing is published unless the caller calls ``commit()``; an exception inside
        the block publishes nothing.
        """
        lock = self.layout.lock_file
        with exclusive_lock(lock, lambda: _busy(lock), wait_seconds=LOCK_WAIT_SECONDS, mode=0o600):
            yield Transaction(self, load_state(self.layout))


def _busy(lock: Path) -> RepositoryBusyError:
    return RepositoryBusyError(
        f"another process has been publishing to {lock.parent} for {LOCK_WAIT_SECONDS:.0f} s",
        hint="wait for it to finish and try again",
    )


class Transaction:
    """Edits to one repository state, signed and published by ``commit()``."""

    def __init__(
        self, repo: Repository, state: RepositoryState, new_roles: Iterable[str] = ()
    ) -> None:
        self.repo = repo
        self.state = state
        self._trusted_root = copy.deepcopy(state.root)
        self._dirty: set[str] = set(new_roles)
        self._new: set[str] = set(new_roles)  # signed as version 1, not bumped

    # --- editing --------------------------------------------------------------

    def edit_root(self) -> Root:
        """The root to change; it is re-signed at commit."""
        self._dirty.add("root")
        return self.state.root.signed

    def edit_targets(self) -> Targets:
        """The top-level targets to change; it is re-signed at commit."""
        self._dirty.add("targets")
        return self.state.targets.signed

    def edit_model(self, model: str) -> Targets:
        """A model's role to change; raise UnknownModelError if there is no such model."""
        md = self.state.model(model)
        self._dirty.add(model)
        return md.signed

    def edit_archive(self, model: str) -> Targets:
        """A model's archive role (its older releases) to change."""
        md = self.state.archive(model)
        self._dirty.add(archive_role(model))
        return md.signed

    def edit_archive_bin(self, model: str, target_path: str) -> Targets:
        """The archive bin that signs ``target_path`` (an archived target), to change.

        An archive written before bins existed is split first: its targets move to
        their bins, and it keeps only the delegation to them."""
        name = self.state.archive_bin_for(model, target_path)
        if name is None:
            self.split_archive(model)
            name = self.state.archive_bin_for(model, target_path)
            assert name is not None
        md = self.state.delegated(name)
        self._dirty.add(name)
        return md.signed

    def split_archive(self, model: str) -> None:
        """Delegate a model's archived targets to hash bins (new roles, signed by the
        model's key) and move the archive's own targets into them."""
        archive = self.edit_archive(model)
        if archive.delegations is not None and archive.delegations.succinct_roles is not None:
            return
        keyids = self.state.delegated_role(model).keyids
        keys = self.state.targets.signed.delegations
        assert keys is not None
        bins = SuccinctRoles(
            keyids=list(keyids),
            threshold=self.state.delegated_role(model).threshold,
            bit_length=self.repo.config.archive_bin_bits,
            name_prefix=archive_role(model),
        )
        archive.delegations = Delegations(
            keys={k: keys.keys[k] for k in keyids}, roles=None, succinct_roles=bins
        )
        for name in bins.get_roles():
            listed = self.state.snapshot.signed.meta.get(f"{name}.json")
            # a name the snapshot already lists keeps growing its version (never reused)
            version = listed.version if listed is not None else 1
            self.state.set_delegated(name, Metadata(Targets(version=version, expires=self._now())))
            self._dirty.add(name)
            if listed is None:
                self._new.add(name)
        for path in list(archive.targets):
            target = archive.targets.pop(path)
            self.state.delegated(bins.get_role_for_target(path)).signed.targets[path] = target

    def resign(self, role: str) -> None:
        """Re-sign ``role`` at commit with a new version and expiry, content unchanged."""
        if role not in TOP_LEVEL_ROLES:
            self.state.delegated_role(role)  # raises UnknownModelError
        self._dirty.add(role)

    def add_model(self, model: str) -> Key:
        """Delegate ``MODEL/*/*`` to a new role (and its archive) signed by a new key."""
        check_name("model", model)
        if model in TOP_LEVEL_ROLES or archive_model(model) is not None:
            raise ModelExistsError(
                f"{model!r} is the name of a top-level role or of an archive role "
                f"(ends in {ARCHIVE_SUFFIX} or {ARCHIVE_SUFFIX}-HEX)"
            )
        if model in self.state.model_names():
            raise ModelExistsError(f"model {model!r} already exists")
        key = self.repo.keyring.create(model, self.repo.clock.now())
        targets = self.edit_targets()
        if targets.delegations is None:
            targets.delegations = Delegations(keys={}, roles={})
        _delegate(targets.delegations, model, key)
        model_role = Targets(version=1, expires=self._now())
        model_role.delegations = Delegations(keys={}, roles={})
        _delegate(model_role.delegations, archive_role(model), key)
        archive = Targets(version=1, expires=self._now())
        for role, signed in ((model, model_role), (archive_role(model), archive)):
            self.state.set_delegated(role, Metadata(signed))
            self._dirty.add(role)
            self._new.add(role)
        self.split_archive(model)
        return key

    # --- signing and publishing ------------------------------------------------

    def require_signers(self, roles: Iterable[str]) -> None:
        """Open the keys ``roles`` need now, so that a missing key or passphrase fails
        before anything is written. Raises SigningError when fewer keys than a role's
        threshold are reachable, PassphraseError when a key will not open."""
        for role in roles:
            available = [k for k in self._keys_for(role) if self.repo.keyring.has(k.keyid)]
            needed = self._threshold(role)
            if len(available) < needed:
                raise SigningError(
                    f"the {role} role needs {needed} signatures, only {len(available)} of "
                    f"its keys are in {self.repo.keyring.keys_dir}",
                    hint="bring the missing keys (or their media) and try again",
                )
            for key in available:
                self.repo.keyring.signer(key)

    def _threshold(self, role: str) -> int:
        if role in TOP_LEVEL_ROLES:
            return self.state.root.signed.roles[role].threshold
        return self.state.delegated_role(role).threshold

    def commit(self) -> list[Path]:
        """Sign every changed role and publish; return the files written, in order.

        The timestamp is written last, so a write that fails (a full disk) leaves the
        previous state served whole; raises RepositoryError saying so.
        """
        try:
            return self._commit()
        except OSError as exc:
            raise RepositoryError(
                f"the signed metadata could not be written ({exc.strerror or exc}); "
                "the repository still serves its previous state",
                hint="free space on the repository's disk, then publish again",
            ) from exc

    def _commit(self) -> list[Path]:
        delegated = [r for r in self._dirty if r not in TOP_LEVEL_ROLES]
        if delegated or "targets" in self._dirty:
            self._dirty.add("snapshot")
        if "snapshot" in self._dirty:
            self._dirty.add("timestamp")
        self.require_signers(sorted(self._dirty))
        written: list[Path] = []
        layout = self.repo.layout
        if "root" in self._dirty:
            self._sign("root", self.state.root)
            written.append(self._write_versioned("root", self.state.root))
        for role in sorted(delegated):
            md = self.state.delegated(role)
            self._sign(role, md)
            written.append(self._write_versioned(role, md))
            self.state.snapshot.signed.meta[f"{role}.json"] = MetaFile(md.signed.version)
        if "targets" in self._dirty:
            self._sign("targets", self.state.targets)
            written.append(self._write_versioned("targets", self.state.targets))
            self.state.snapshot.signed.meta["targets.json"] = MetaFile(
                self.state.targets.signed.version
            )
        if "snapshot" in self._dirty:
            self._sign("snapshot", self.state.snapshot)
            written.append(self._write_versioned("snapshot", self.state.snapshot))
            self.state.timestamp.signed.snapshot_meta = MetaFile(self.state.snapshot.signed.version)
        if "timestamp" in self._dirty:
            self._sign("timestamp", self.state.timestamp)
            write_atomic(layout.timestamp_file, self.state.timestamp.to_bytes())
            written.append(layout.timestamp_file)
            prune_unreachable(
                layout, self.state.snapshot.signed.version, self.repo.config.kept_snapshots
            )
        self._dirty.clear()
        self._new.clear()
        self._trusted_root = copy.deepcopy(self.state.root)
        return written

    def _now(self) -> datetime:
        return self.repo.clock.now().replace(microsecond=0)

    def _keys_for(self, role: str) -> list[Key]:
        if role in TOP_LEVEL_ROLES:
            keys = _role_keys(self.state.root.signed, role)
            if role == "root":  # a new root needs the trusted root's keys as well
                known = {k.keyid for k in keys}
                keys += [
                    k for k in _role_keys(self._trusted_root.signed, "root") if k.keyid not in known
                ]
            return keys
        delegations = self.state.delegator(role).delegations
        assert delegations is not None
        return [delegations.keys[k] for k in self.state.delegated_role(role).keyids]

    def _sign(self, role: str, md: Metadata[Any]) -> None:
        signed = md.signed
        if role not in self._new:
            signed.version += 1
        signed.expires = self._now() + self.repo.config.expiries.for_role(role)
        md.signatures.clear()
        for key in self._keys_for(role):
            if self.repo.keyring.has(key.keyid):
                md.sign(self.repo.keyring.signer(key), append=True)
        self._check_threshold(role, md)

    def _check_threshold(self, role: str, md: Metadata[Any]) -> None:
        payload = md.signed_bytes
        if role in TOP_LEVEL_ROLES:
            delegators: list[Root | Targets] = [self.state.root.signed]
            if role == "root":
                delegators.append(self._trusted_root.signed)
        else:
            delegators = [self.state.delegator(role)]
        for delegator in delegators:
            result = delegator.get_verification_result(role, payload, md.signatures)
            if not result.verified:
                raise SigningError(
                    f"the {role} role needs {result.threshold} signatures, "
                    f"only {len(result.signed)} of its keys are in {self.repo.keyring.keys_dir}",
                    hint="bring the missing keys (or their passphrases) and try again",
                )

    def _write_versioned(self, role: str, md: Metadata[Any]) -> Path:
        path = self.repo.layout.metadata_file(role, md.signed.version)
        write_atomic(path, md.to_bytes())
        return path


def prune_unreachable(layout: RepositoryLayout, snapshot_version: int, kept: int) -> int:
    """After snapshot ``snapshot_version`` is published, remove the metadata files that
    none of the newest ``kept`` snapshots names; return how many were removed.

    Kept: every root version (a client walks them one by one), snapshots from
    ``snapshot_version - kept`` on, and each role's versions from the one that oldest
    kept snapshot names on (versions only grow, so every newer snapshot names one at
    least as high). Nothing is removed when that snapshot is not on disk. Removal walks
    down from each floor and stops at the first gap, so a publish removes only what the
    window left behind since the previous one.
    """
    oldest = snapshot_version - kept
    if oldest < 1:
        return 0
    try:
        floor_snapshot = read_metadata(layout, "snapshot", oldest, Snapshot)
    except RepositoryCorruptError:
        return 0
    floors = {"snapshot": oldest}
    for name, meta in floor_snapshot.signed.meta.items():
        role = name.removesuffix(".json")
        if role not in ("root", "snapshot", "timestamp"):
            floors[role] = meta.version
    removed = 0
    for role, floor in floors.items():
        for version in range(floor - 1, 0, -1):
            try:
                layout.metadata_file(role, version).unlink()
            except FileNotFoundError:
                break
            removed += 1
    return removed


def _delegate(delegations: Delegations, role: str, key: Key) -> None:
    assert delegations.roles is not None
    delegations.keys[key.keyid] = key
    delegations.roles[role] = DelegatedRole(
        name=role, keyids=[key.keyid], threshold=1, terminating=True, paths=model_paths(role)
    )


def _role_keys(root: Root, role: str) -> list[Key]:
    return [root.keys[keyid] for keyid in root.roles[role].keyids]
