"""The repository's current signed state, read from the public tree itself.

The public tree is the only source of truth: the newest root is the highest
``N.root.json``; everything else is reached from ``timestamp.json``. A publish that
crashed before replacing ``timestamp.json`` left only unreferenced files behind, so
the state read here is always the last one published whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from tuf.api.exceptions import RepositoryError as TufRepositoryError
from tuf.api.metadata import (
    Metadata,
    Role,
    Root,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization import DeserializationError

from patchline.errors import RepositoryCorruptError, RepositoryNotFoundError, UnknownModelError
from patchline.repository.layout import RepositoryLayout

T = TypeVar("T", Root, Timestamp, Snapshot, Targets)


def read_metadata(
    layout: RepositoryLayout, role: str, version: int | None, kind: type[T]
) -> Metadata[T]:
    """Read one role file (``timestamp.json`` when ``version`` is None) and check its type."""
    path = layout.timestamp_file if version is None else layout.metadata_file(role, version)
    try:
        md = Metadata[T].from_bytes(path.read_bytes())
    except FileNotFoundError:
        raise RepositoryCorruptError(
            f"metadata file {path.name} is missing from {layout.metadata_dir}"
        ) from None
    except (OSError, DeserializationError, TufRepositoryError) as exc:
        raise RepositoryCorruptError(f"metadata file {path.name} is unreadable: {exc}") from None
    if not isinstance(md.signed, kind):
        raise RepositoryCorruptError(f"{path.name} holds {md.signed.type}, not {role}")
    return md


ARCHIVE_SUFFIX = ".archive"


def archive_role(model: str) -> str:
    """The role holding a model's older releases, delegated from the model's role."""
    return model + ARCHIVE_SUFFIX


def archive_model(role: str) -> str | None:
    """The model whose archive ``role`` is or whose archive bin it is (``MODEL.archive``
    or ``MODEL.archive-HEX``); None for any other name."""
    head, sep, tail = role.rpartition(ARCHIVE_SUFFIX)
    if not sep or not head:
        return None
    if tail == "" or (tail.startswith("-") and _is_hex(tail[1:])):
        return head
    return None


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdef" for c in text)


@dataclass
class RepositoryState:
    """The metadata of the last complete publish; delegated roles load on first use.

    Delegated roles: each model's role (delegated by ``targets``) holds the model's
    newest releases, and delegates the model's archive role. The archive splits the
    older releases into hash bins (TUF succinct delegation, ``MODEL.archive-HEX``) so a
    publication re-signs one small bin, never the whole history. An archive written
    before bins existed holds the older releases itself until its next change.
    A device's refresh fetches only its model's role, whose size does not grow with
    the model's history.
    """

    layout: RepositoryLayout
    root: Metadata[Root]
    timestamp: Metadata[Timestamp]
    snapshot: Metadata[Snapshot]
    targets: Metadata[Targets]
    _delegated: dict[str, Metadata[Targets]] = field(default_factory=dict)

    def model_names(self) -> list[str]:
        """The device models, one delegated targets role each, in delegation order."""
        delegations = self.targets.signed.delegations
        if delegations is None or delegations.roles is None:
            return []
        return list(delegations.roles)

    def delegator(self, role: str) -> Targets:
        """The targets metadata that delegates ``role``: top-level targets for a model,
        the model's role for its archive, the archive for one of its bins."""
        model = archive_model(role)
        if model is not None and model in self.model_names():
            if role == archive_role(model):
                return self.model(model).signed
            if role in self.archive_bins(model):
                return self.archive(model).signed
        if role in self.model_names():
            return self.targets.signed
        raise self._unknown(role)

    def delegated_role(self, role: str) -> Role:
        """The delegation entry (keys and threshold) of a delegated role; for an archive
        bin, the archive's succinct delegation, which all its bins share."""
        delegations = self.delegator(role).delegations
        bins = delegations.succinct_roles if delegations is not None else None
        if bins is not None and bins.is_delegated_role(role):
            return bins
        if delegations is None or delegations.roles is None or role not in delegations.roles:
            raise RepositoryCorruptError(f"the delegation of role {role} is missing")
        return delegations.roles[role]

    def archive_bins(self, model: str) -> list[str]:
        """The names of the bins of a model's archive, in order (none for an archive
        written before bins existed)."""
        succinct = self._bins_delegation(model)
        return list(succinct.get_roles()) if succinct is not None else []

    def archive_bin_for(self, model: str, target_path: str) -> str | None:
        """The archive bin that signs ``target_path``; None if the archive has no bins."""
        succinct = self._bins_delegation(model)
        return succinct.get_role_for_target(target_path) if succinct is not None else None

    def archived_targets(self, model: str) -> dict[str, TargetFile]:
        """Every target of a model's archive: those of the archive role and of its bins."""
        found = dict(self.archive(model).signed.targets)
        for name in self.archive_bins(model):
            found.update(self._load(name).signed.targets)
        return found

    def _bins_delegation(self, model: str) -> SuccinctRoles | None:
        delegations = self.archive(model).signed.delegations
        return delegations.succinct_roles if delegations is not None else None

    def model(self, name: str) -> Metadata[Targets]:
        """The signed role of one model; raise UnknownModelError if there is none."""
        if name not in self.model_names():
            raise self._unknown(name)
        return self._load(name)

    def archive(self, model: str) -> Metadata[Targets]:
        """The signed archive role of one model (its older releases)."""
        self.delegated_role(archive_role(model))
        return self._load(archive_role(model))

    def delegated(self, role: str) -> Metadata[Targets]:
        """Any delegated role's metadata, by role name."""
        self.delegated_role(role)
        return self._load(role)

    def _load(self, role: str) -> Metadata[Targets]:
        if role in self._delegated:
            return self._delegated[role]
        meta = self.snapshot.signed.meta.get(f"{role}.json")
        if meta is None:
            raise RepositoryCorruptError(f"the snapshot does not list role {role}")
        md = read_metadata(self.layout, role, meta.version, Targets)
        self._delegated[role] = md
        return md

    def _unknown(self, name: str) -> UnknownModelError:
        known = ", ".join(self.model_names()) or "none yet"
        return UnknownModelError(
            f"unknown model {name!r} (known: {known})",
            hint=f"add it first with: patchline model add {name}",
        )

    def delegated_roles(self) -> list[str]:
        """Every delegated role: each model's role followed by its archive and the
        archive's bins."""
        roles = []
        for model in self.model_names():
            roles.append(model)
            model_delegations = self.model(model).signed.delegations
            if model_delegations is not None and model_delegations.roles:
                roles += list(model_delegations.roles)
            if archive_role(model) in roles:
                roles += self.archive_bins(model)
        return roles

    def signed_roles(self) -> list[tuple[str, Metadata[Any]]]:
        """Every role with its metadata: the four top-level roles, then the delegated ones."""
        roles: list[tuple[str, Metadata[Any]]] = [
            ("root", self.root),
            ("targets", self.targets),
            ("snapshot", self.snapshot),
            ("timestamp", self.timestamp),
        ]
        roles += [(name, self._load(name)) for name in self.delegated_roles()]
        return roles

    def set_delegated(self, name: str, md: Metadata[Targets]) -> None:
        """Hold a new or changed delegated role (used while building a publish)."""
        self._delegated[name] = md


def load_state(layout: RepositoryLayout) -> RepositoryState:
    """Read the last published state; raise RepositoryNotFoundError if there is none."""
    roots = layout.root_versions()
    if not roots or not layout.timestamp_file.exists():
        raise RepositoryNotFoundError(
            f"no Patchline repository in {layout.home}",
            hint="create one with: patchline init DIR, or pass --home DIR",
        )
    root = read_metadata(layout, "root", roots[-1], Root)
    timestamp = read_metadata(layout, "timestamp", None, Timestamp)
    snapshot = read_metadata(layout, "snapshot", timestamp.signed.snapshot_meta.version, Snapshot)
    targets_meta = snapshot.signed.meta.get("targets.json")
    if targets_meta is None:
        raise RepositoryCorruptError("the snapshot does not list targets.json")
    targets = read_metadata(layout, "targets", targets_meta.version, Targets)
    return RepositoryState(layout, root, timestamp, snapshot, targets)
