"""Offline bundles: the offline role's key, and a signed folder for an SD card or USB stick.

A bundle carries everything a device of one model needs to verify and install one build
with no network: every root version, the image repository's targets and model roles
that sign the release, the offline snapshot and offline targets signed by the offline
key named in root (``patchline.wire.offline``), the image and, if asked, its deltas. The
offline role's long expiry (``[expiry] offline``, default 180 days) is what keeps it
valid after the one-day timestamp of the online repository has long expired.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from securesystemslib.signer import Key
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata, MetaFile, Snapshot, TargetFile, Targets

from patchline.errors import BundleError, RepositoryCorruptError, SigningError
from patchline.fsutil import fsync_dir, write_atomic
from patchline.repository.publisher import Repository
from patchline.repository.releases import PublishedRelease, releases_of
from patchline.repository.state import RepositoryState, archive_role
from patchline.transport.releases import SignedDelta, signed_releases
from patchline.wire.offline import (
    BUNDLE_FIELD,
    OFFLINE_FIELD,
    OFFLINE_ROLE,
    OFFLINE_SNAPSHOT,
    OFFLINE_TARGETS,
    OfflineRoleMissing,
    offline_field,
    offline_keys,
    verify_offline,
)
from patchline.wire.paths import UnsafePathError, consistent_target_file

CHUNK = 1 << 20


@dataclass(frozen=True)
class ExportedBundle:
    """What ``export_bundle`` wrote: for which release, valid until when, how big."""

    folder: Path
    model: str
    build: str
    targets: tuple[str, ...]
    expires: datetime
    version: int
    size: int


def has_offline_key(repo: Repository) -> bool:
    """True when the newest root names an offline role."""
    return OFFLINE_FIELD in repo.state().root.signed.unrecognized_fields


def add_offline_key(repo: Repository) -> Key:
    """Make the offline role's key and name it in a new root version; return its public key.

    Raises BundleError when root already names one (rotate it with a new root instead),
    SigningError or PassphraseError when the root keys needed are not here; on any
    refusal the repository and keyring are unchanged.
    """
    with repo.transaction() as tx:
        if OFFLINE_FIELD in tx.state.root.signed.unrecognized_fields:
            raise BundleError("the root already names an offline key")
        tx.require_signers(["root"])
        key = repo.keyring.create(OFFLINE_ROLE, repo.clock.now())
        try:
            tx.edit_root().unrecognized_fields[OFFLINE_FIELD] = offline_field(key)
            tx.commit()
        except BaseException:
            repo.keyring.retire(key.keyid)
            raise
    return key


def export_bundle(
    repo: Repository,
    model: str,
    out_dir: Path,
    *,
    build: str | None = None,
    with_deltas: bool = False,
) -> ExportedBundle:
    """Write a signed offline bundle for ``model`` (its newest build unless ``build``).

    Raises UnknownModelError, BundleError (no offline key, unknown build, ``out_dir``
    not an empty folder), SigningError or PassphraseError (offline key unusable), and
    RepositoryCorruptError when a stored image does not match its signed hash. Nothing
    is left in ``out_dir`` unless the whole bundle was written.
    """
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise BundleError(
            f"{out_dir} is not an empty folder", hint="give a new or empty folder for the bundle"
        )
    state = repo.state()
    try:
        keys = offline_keys(state.root.signed)
    except OfflineRoleMissing:
        raise BundleError(
            "this repository has no offline key", hint="create one with: patchline bundle init-key"
        ) from None
    release = _pick(releases_of(state, model), model, build)
    roles = _roles_of(state, model)
    chosen = _chosen_targets(roles, release, with_deltas)
    roles = _roles_signing(roles, chosen, keep=(model, archive_role(model)))
    signers = [repo.keyring.signer(k) for k in keys if repo.keyring.has(k.keyid)]
    if not signers:
        raise SigningError(
            f"the offline key is not in {repo.keyring.keys_dir}",
            hint="bring the offline key (or its medium) and try again",
        )

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        size = _write(repo, state, model, release, roles, chosen, signers, staging)
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(staging, out_dir)
        fsync_dir(out_dir.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    md = Metadata[Snapshot].from_bytes((out_dir / "metadata" / OFFLINE_SNAPSHOT).read_bytes())
    return ExportedBundle(
        out_dir,
        model,
        release.info.build,
        tuple(chosen),
        md.signed.expires,
        md.signed.version,
        size,
    )


def _pick(releases: list[PublishedRelease], model: str, build: str | None) -> PublishedRelease:
    if not releases:
        raise BundleError(f"model {model} has no releases to put in a bundle")
    if build is None:
        return releases[-1]
    for release in releases:
        if release.info.build == build:
            return release
    known = ", ".join(r.info.build for r in releases)
    raise BundleError(f"model {model} has no build {build!r} (published: {known})")


def _roles_of(state: RepositoryState, model: str) -> dict[str, Metadata[Targets]]:
    roles = {model: state.model(model), archive_role(model): state.archive(model)}
    roles.update((name, state.delegated(name)) for name in state.archive_bins(model))
    return roles


def _roles_signing(
    roles: dict[str, Metadata[Targets]], chosen: dict[str, TargetFile], keep: tuple[str, ...]
) -> dict[str, Metadata[Targets]]:
    """The roles of ``keep`` (the delegation chain) and those signing a chosen target:
    a bundle carries the one archive bin its release is in, not every bin."""
    return {
        name: md
        for name, md in roles.items()
        if name in keep or any(path in md.signed.targets for path in chosen)
    }


def _chosen_targets(
    roles: dict[str, Metadata[Targets]], release: PublishedRelease, with_deltas: bool
) -> dict[str, TargetFile]:
    signed = {path: t for md in roles.values() for path, t in md.signed.targets.items()}
    chosen = {release.target_path: signed[release.target_path]}
    if with_deltas:
        for delta in signed_releases(signed):
            if not isinstance(delta, SignedDelta):
                continue
            if delta.info.full_target == release.target_path and (
                delta.info.full_sha256 == release.sha256
            ):
                chosen[delta.path] = delta.target
    return chosen


def _write(
    repo: Repository,
    state: RepositoryState,
    model: str,
    release: PublishedRelease,
    roles: dict[str, Metadata[Targets]],
    chosen: dict[str, TargetFile],
    signers: list[Any],
    folder: Path,
) -> int:
    """Targets first, then image repository metadata, offline targets, offline snapshot."""
    layout = repo.layout
    size = 0
    for path, target in chosen.items():
        sha256 = target.hashes["sha256"]
        size += _copy_checked(layout.target_file(path, sha256), target, folder, path)
    metadata = folder / "metadata"
    metadata.mkdir()
    for version in layout.root_versions():
        shutil.copyfile(layout.metadata_file("root", version), metadata / f"{version}.root.json")
    pinned: dict[str, MetaFile] = {}
    for role, md in [("targets", state.targets), *roles.items()]:
        data = layout.metadata_file(role, md.signed.version).read_bytes()
        write_atomic(metadata / f"{md.signed.version}.{role}.json", data)
        pinned[f"{role}.json"] = _metafile(md.signed.version, data)
    now = repo.clock.now().replace(microsecond=0)
    expires = now + repo.config.expiries.offline
    version = int(now.timestamp())
    offline_targets = Metadata(
        Targets(version=version, expires=expires, targets=dict(chosen.items()))
    )
    targets_bytes = _signed_bytes(state, offline_targets, signers)
    write_atomic(metadata / OFFLINE_TARGETS, targets_bytes)
    pinned[OFFLINE_TARGETS] = _metafile(version, targets_bytes)
    snapshot = Snapshot(version=version, expires=expires, meta=pinned)
    snapshot.unrecognized_fields[BUNDLE_FIELD] = {
        "model": model,
        "build": release.info.build,
        "target": release.target_path,
        "created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    write_atomic(metadata / OFFLINE_SNAPSHOT, _signed_bytes(state, Metadata(snapshot), signers))
    return size + sum(p.stat().st_size for p in metadata.iterdir())


def _signed_bytes(state: RepositoryState, md: Metadata[Any], signers: list[Any]) -> bytes:
    for signer in signers:
        md.sign(signer, append=True)
    try:
        verify_offline(state.root.signed, md)
    except UnsignedMetadataError as exc:
        raise SigningError(f"the offline role's threshold is not met: {exc}") from None
    return md.to_bytes()


def _metafile(version: int, data: bytes) -> MetaFile:
    return MetaFile(version, len(data), {"sha256": hashlib.sha256(data).hexdigest()})


def _copy_checked(source: Path, target: TargetFile, folder: Path, path: str) -> int:
    """Copy a stored target into the bundle under its consistent-snapshot name, checking
    its length and hash on the way."""
    sha256 = target.hashes["sha256"]
    try:
        dest = consistent_target_file(folder / "targets", path, sha256)
    except UnsafePathError as exc:
        raise BundleError(str(exc), hint="remove that target from the role that signs it") from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    length = 0
    try:
        with source.open("rb") as src, dest.open("wb") as out:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                length += len(chunk)
            out.flush()
            os.fsync(out.fileno())
    except FileNotFoundError:
        raise RepositoryCorruptError(f"the stored file of {path} is missing ({source})") from None
    if length != target.length or digest.hexdigest() != sha256:
        raise RepositoryCorruptError(f"the stored file of {path} does not match its signed hash")
    return length
