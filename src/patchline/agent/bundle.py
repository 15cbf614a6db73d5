"""Verifying a signed offline bundle (SD card, USB stick) with no network at all.

The checks, in order, each refusing with a reason a person can act on:

1. the root chain, from the root the device shipped with, through every
   ``N.root.json`` the bundle carries; never below the root the device already trusts;
2. the offline snapshot and offline targets, signed by a threshold of the offline keys
   the newest root names, and not expired on the device clock (the offline role's own
   expiry applies; the online one-day timestamp plays no part);
3. the image repository's targets and model roles the offline snapshot pins (exact
   length and hash), each signed by the keys its delegator names (their online expiry
   is not applied: the offline role's expiry is the freshness bound offline);
4. every offline target agrees with the image repository's signed entry: same path,
   length, hashes and custom fields (so the offline key alone cannot add an image);
5. the bundle is for this device's model.

What remains (never older build or patch level, eligibility, the director when there
is one) is ``patchline.agent.choose``'s, exactly as for an online source; the bytes are
checked against the signed length and hash as they are copied.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import (
    DelegatedRole,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
)
from tuf.api.serialization import DeserializationError

from patchline.agent.sources import Source
from patchline.errors import MetadataRefusedError, NoBundleError, NotEligibleError
from patchline.transport.card import read_metadata
from patchline.wire.offline import (
    BUNDLE_FIELD,
    OFFLINE_SNAPSHOT,
    OFFLINE_TARGETS,
    OfflineRoleMissing,
    verify_offline,
)
from patchline.wire.paths import UnsafePathError, consistent_name
from patchline.wire.release import model_lookup_path

T = TypeVar("T", Root, Snapshot, Targets)


def is_signed_bundle(folder: Path) -> bool:
    """True when ``folder`` holds a signed offline bundle (not a plain repository copy):
    its ``metadata/offline-snapshot.json`` is there, as a file or as a link, which
    ``open_bundle`` then refuses."""
    path = folder / "metadata" / OFFLINE_SNAPSHOT
    return path.exists() or path.is_symlink()


@dataclass
class OfflineBundle:
    """A bundle whose metadata verified; its targets are what may be installed from it."""

    source: Source
    folder: Path
    bundle_id: str
    model: str
    version: int
    expires: datetime
    root_version: int
    targets: dict[str, TargetFile]

    def model_targets(self, model: str) -> dict[str, TargetFile]:
        """The bundle's verified targets (all of its model, checked at open)."""
        return dict(self.targets)

    def lookup(self, path: str) -> TargetFile | None:
        """The verified TargetFile for ``path``, or None when the bundle does not carry it."""
        return self.targets.get(path)

    def target_url(self, target: TargetFile) -> str:
        """The file:// URL of the target's bytes (consistent-snapshot name); the path was
        checked when the bundle was opened."""
        name = consistent_name(target.path, target.hashes["sha256"])
        return (self.folder / "targets" / name).absolute().as_uri()


def open_bundle(
    source: Source,
    shipped_root: bytes,
    trusted_root_version: int,
    model: str,
    now: datetime,
    trusted_versions: Mapping[str, int] | None = None,
) -> OfflineBundle:
    """Verify the signed bundle in ``source``'s folder for a device of ``model``; its
    targets and model roles may not be older than ``trusted_versions`` (role name ->
    version the device already trusts from an online source).

    Raises NoBundleError (no signed bundle there), MetadataRefusedError (a signature,
    hash, expiry or root-chain check failed; CardFileRefusedError: a file on the card is
    a link, not a regular file, or larger than allowed; an unsafe target path) or
    NotEligibleError (another model).
    """
    folder = Path(source.location).absolute()
    metadata = _Card(folder)
    if not is_signed_bundle(folder):
        raise NoBundleError(f"no signed offline bundle in {folder}")
    try:
        root = _root_chain(metadata, shipped_root)
        if root.signed.version < trusted_root_version:
            raise MetadataRefusedError(
                f"the bundle's newest root is version {root.signed.version}, older than "
                f"version {trusted_root_version} this device already trusts: the bundle "
                "was made before the repository's keys changed, and a rotated offline key "
                "revokes older bundles; ask for a newer bundle"
            )
        snapshot_bytes = metadata.read(OFFLINE_SNAPSHOT)
        snapshot = _offline(root, snapshot_bytes, Snapshot, "offline snapshot", now)
        described = snapshot.signed.unrecognized_fields.get(BUNDLE_FIELD, {})
        bundle_model = str(described.get("model", "")) if isinstance(described, dict) else ""
        if bundle_model != model:
            raise NotEligibleError(f"the bundle is for model {bundle_model}, not {model}")
        offline_targets = _offline(
            root,
            _pinned(metadata, snapshot.signed, OFFLINE_TARGETS, OFFLINE_TARGETS),
            Targets,
            "offline targets",
            now,
        )
        signed = _image_targets(metadata, root, snapshot.signed, model, trusted_versions or {})
        for path, target in offline_targets.signed.targets.items():
            consistent_name(path, target.hashes["sha256"])
            image = signed.get(path)
            if image is None or image.to_dict() != target.to_dict():
                raise MetadataRefusedError(
                    f"the offline targets and the image repository disagree on {path}"
                )
    except UnsafePathError as exc:
        raise MetadataRefusedError(f"bundle metadata refused: {exc}") from None
    except (OfflineRoleMissing, tuf_errors.RepositoryError, DeserializationError) as exc:
        raise MetadataRefusedError(f"bundle metadata refused: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise MetadataRefusedError(f"bundle metadata malformed: {exc}") from None
    return OfflineBundle(
        source=source,
        folder=folder,
        bundle_id=hashlib.sha256(snapshot_bytes).hexdigest()[:16],
        model=model,
        version=snapshot.signed.version,
        expires=snapshot.signed.expires,
        root_version=root.signed.version,
        targets=dict(offline_targets.signed.targets),
    )


def _not_older(md: Metadata[Targets], role: str, trusted_versions: Mapping[str, int]) -> None:
    trusted = trusted_versions.get(role, 0)
    if md.signed.version < trusted:
        raise MetadataRefusedError(
            f"the bundle's {role} metadata is version {md.signed.version}, older than "
            f"version {trusted} this device already trusts: it was made before a newer "
            "signing (a release withdrawn or restricted since); ask for a newer bundle"
        )


@dataclass(frozen=True)
class _Card:
    """The bundle's ``metadata/`` folder, read through ``patchline.transport.card``."""

    folder: Path

    def read(self, name: str) -> bytes:
        """The bytes of ``metadata/NAME``; MetadataRefusedError when it is missing."""
        data = self.read_if_there(name)
        if data is None:
            raise MetadataRefusedError(f"the bundle lacks {name}")
        return data

    def read_if_there(self, name: str) -> bytes | None:
        """The bytes of ``metadata/NAME``, or None when there is no such file."""
        try:
            return read_metadata(self.folder, f"metadata/{name}")
        except (FileNotFoundError, NotADirectoryError):
            return None


def _root_chain(metadata: _Card, shipped_root: bytes) -> Metadata[Root]:
    """Walk ``N.root.json`` from the shipped root; each new root is signed by a threshold
    of the previous root's keys and of its own."""
    root = Metadata[Root].from_bytes(shipped_root)
    while True:
        name = f"{root.signed.version + 1}.root.json"
        data = metadata.read_if_there(name)
        if data is None:
            return root
        new = Metadata[Root].from_bytes(data)
        if new.signed.type != "root" or new.signed.version != root.signed.version + 1:
            raise MetadataRefusedError(f"{name} is not root version {name[:-10]}")
        root.signed.verify_delegate("root", new.signed_bytes, new.signatures)
        new.signed.verify_delegate("root", new.signed_bytes, new.signatures)
        root = new


def _offline(
    root: Metadata[Root], data: bytes, kind: type[T], what: str, now: datetime
) -> Metadata[T]:
    md = Metadata[T].from_bytes(data)
    if not isinstance(md.signed, kind):
        raise MetadataRefusedError(f"the {what} holds {md.signed.type} metadata")
    try:
        verify_offline(root.signed, md)
    except tuf_errors.UnsignedMetadataError as exc:
        raise MetadataRefusedError(
            f"the {what} is not signed by the offline key root version {root.signed.version} "
            f"names ({exc}): it was signed with a retired (rotated) offline key, or altered; "
            "ask for a newer bundle"
        ) from None
    if md.signed.is_expired(now):
        raise MetadataRefusedError(
            f"the {what} expired {md.signed.expires:%Y-%m-%d %H:%M} UTC "
            f"(device clock {now:%Y-%m-%d %H:%M} UTC): ask for a newer bundle"
        )
    return md


def _pinned(metadata: _Card, snapshot: Snapshot, key: str, filename: str) -> bytes:
    meta: MetaFile | None = snapshot.meta.get(key)
    if meta is None:
        raise MetadataRefusedError(f"the offline snapshot does not list {key}")
    data = metadata.read(filename)
    try:
        meta.verify_length_and_hashes(data)
    except tuf_errors.LengthOrHashMismatchError as exc:
        raise MetadataRefusedError(
            f"{filename} does not match the offline snapshot ({exc})"
        ) from None
    return data


def _load_role(
    metadata: _Card, snapshot: Snapshot, role: str, delegator: Root | Targets
) -> Metadata[Targets]:
    meta = snapshot.meta.get(f"{role}.json")
    if meta is None:
        raise MetadataRefusedError(f"the offline snapshot does not pin {role}.json")
    md = Metadata[Targets].from_bytes(
        _pinned(metadata, snapshot, f"{role}.json", f"{meta.version}.{role}.json")
    )
    if not isinstance(md.signed, Targets) or md.signed.version != meta.version:
        raise MetadataRefusedError(f"{meta.version}.{role}.json is not the pinned {role}")
    delegator.verify_delegate(role, md.signed_bytes, md.signatures)
    return md


def _image_targets(
    metadata: _Card,
    root: Metadata[Root],
    snapshot: Snapshot,
    model: str,
    trusted_versions: Mapping[str, int],
) -> dict[str, TargetFile]:
    """The model's targets signed by the image repository, through the delegations that
    lead to them (targets -> MODEL -> MODEL.archive -> its hash bins), none older than
    the device trusts: a card made before a release was withdrawn or restricted cannot
    bring it back."""
    targets = _load_role(metadata, snapshot, "targets", root.signed)
    _not_older(targets, "targets", trusted_versions)
    found: dict[str, TargetFile] = {}
    delegator: Targets = targets.signed
    role = model
    while delegator.delegations is not None and delegator.delegations.roles:
        delegated = delegator.delegations.roles.get(role)
        if delegated is None or f"{role}.json" not in snapshot.meta:
            break
        md = _load_role(metadata, snapshot, role, delegator)
        _not_older(md, role, trusted_versions)
        for path, target in md.signed.targets.items():
            if delegated.is_delegated_path(path) and path != model_lookup_path(model):
                found.setdefault(path, target)
        if role != model:  # the archive: its bins, if any, hold the archived builds
            found.update(_bin_targets(metadata, snapshot, md.signed, delegated, trusted_versions))
        delegator, role = md.signed, f"{model}.archive"
    return found


def _bin_targets(
    metadata: _Card,
    snapshot: Snapshot,
    archive: Targets,
    archive_delegation: DelegatedRole,
    trusted_versions: Mapping[str, int],
) -> dict[str, TargetFile]:
    """The targets of the archive's hash bins the card carries, each verified by the
    archive's succinct delegation and kept only if it is in the bin its path hashes to."""
    bins = archive.delegations.succinct_roles if archive.delegations is not None else None
    found: dict[str, TargetFile] = {}
    if bins is None:
        return found
    for name in bins.get_roles():
        if f"{name}.json" not in snapshot.meta:
            continue
        md = _load_role(metadata, snapshot, name, archive)
        _not_older(md, name, trusted_versions)
        for path, target in md.signed.targets.items():
            in_bin = bins.get_role_for_target(path) == name
            if in_bin and archive_delegation.is_delegated_path(path):
                found.setdefault(path, target)
    return found
