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
from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp
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


@dataclass
class RepositoryState:
    """The metadata of the last complete publish; delegated roles load on first use."""

    layout: RepositoryLayout
    root: Metadata[Root]
    timestamp: Metadata[Timestamp]
    snapshot: Metadata[Snapshot]
    targets: Metadata[Targets]
    _models: dict[str, Metadata[Targets]] = field(default_factory=dict)

    def model_names(self) -> list[str]:
        """The device models, one delegated targets role each, in delegation order."""
        delegations = self.targets.signed.delegations
        if delegations is None or delegations.roles is None:
            return []
        return list(delegations.roles)

    def model(self, name: str) -> Metadata[Targets]:
        """The signed targets of one model; raise UnknownModelError if there is none."""
        if name in self._models:
            return self._models[name]
        if name not in self.model_names():
            known = ", ".join(self.model_names()) or "none yet"
            raise UnknownModelError(
                f"unknown model {name!r} (known: {known})",
                hint=f"add it first with: patchline model add {name}",
            )
        meta = self.snapshot.signed.meta.get(f"{name}.json")
        if meta is None:
            raise RepositoryCorruptError(f"the snapshot does not list model role {name}")
        md = read_metadata(self.layout, name, meta.version, Targets)
        self._models[name] = md
        return md

    def signed_roles(self) -> list[tuple[str, Metadata[Any]]]:
        """Every role with its metadata: the four top-level roles, then each model."""
        roles: list[tuple[str, Metadata[Any]]] = [
            ("root", self.root),
            ("targets", self.targets),
            ("snapshot", self.snapshot),
            ("timestamp", self.timestamp),
        ]
        roles += [(name, self.model(name)) for name in self.model_names()]
        return roles

    def set_model(self, name: str, md: Metadata[Targets]) -> None:
        """Hold a new or changed model role (used while building a publish)."""
        self._models[name] = md


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
