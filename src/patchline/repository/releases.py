"""Publishing a release: the image stored by content hash, signed as a model's target."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from tuf.api.metadata import TargetFile, Targets

from patchline.delta import build_delta
from patchline.errors import ImageError, ReleaseRejectedError
from patchline.fsutil import fsync_dir
from patchline.repository.publisher import Repository, Transaction
from patchline.repository.state import RepositoryState
from patchline.transport.releases import full_releases
from patchline.wire.builds import build_sort_key, is_newer_build
from patchline.wire.release import (
    NAME_PATTERN,
    DeltaTargetInfo,
    Eligibility,
    ReleaseInfo,
    UpdateClass,
    delta_target_path,
)

CHUNK = 1 << 20


@dataclass(frozen=True)
class ReleaseRequest:
    """What the publisher asks for; validated by ``add_release``."""

    image: Path
    model: str
    build: str
    security_patch_level: date
    update_class: UpdateClass
    eligibility: Eligibility = field(default_factory=Eligibility)
    notes: str = ""
    build_time: datetime | None = None
    allow_downgrade: bool = False


@dataclass(frozen=True)
class PublishedDelta:
    """A delta published with a release: from which build, and its size."""

    target_path: str
    source_build: str
    length: int


@dataclass(frozen=True)
class PublishedRelease:
    """A release as signed: its target path, length, hash and facts, and its deltas."""

    target_path: str
    length: int
    sha256: str
    info: ReleaseInfo
    deltas: tuple[PublishedDelta, ...] = ()


#: Called while deltas are built: (what, bytes done, bytes total).
DeltaProgress = Callable[[str, int, int], None]


def target_path_for(model: str, build: str, image_name: str) -> str:
    """The TUF target path of a full image: ``MODEL/BUILD/FILE``."""
    return f"{model}/{build}/{image_name}"


def releases_of(state: RepositoryState, model: str) -> list[PublishedRelease]:
    """Every full-image release of ``model`` in ``state`` (current and archived), oldest
    build first."""
    current = state.model(model).signed.targets
    return _releases_in({**state.archived_targets(model), **current})


def _releases_in(targets: dict[str, TargetFile]) -> list[PublishedRelease]:
    return [
        PublishedRelease(r.path, r.target.length, r.target.hashes["sha256"], r.info)
        for r in full_releases(targets)
    ]


def add_release(
    repo: Repository, request: ReleaseRequest, progress: DeltaProgress | None = None
) -> PublishedRelease:
    """Validate, store and sign a new release with deltas from the model's newest builds;
    on any refusal the repository is unchanged.

    Refuses an unknown model, a duplicate build, a build or security patch level below
    the model's newest (unless ``allow_downgrade``), and an image that cannot be read.
    A delta is published only when it is smaller than the full image.
    """
    image_name = request.image.name
    if not NAME_PATTERN.match(image_name):
        raise ImageError(
            f"image file name {image_name!r} is not usable as a target name",
            hint="rename it to letters, digits, '.', '_' and '-' only",
        )
    _check_image_readable(request.image)
    with repo.transaction() as tx:
        model_targets = tx.edit_model(request.model)
        archived = tx.state.archived_targets(request.model)
        info = ReleaseInfo(
            model=request.model,
            build=request.build,
            build_time=request.build_time or repo.clock.now().replace(microsecond=0),
            security_patch_level=request.security_patch_level,
            update_class=request.update_class,
            eligibility=request.eligibility,
            notes=request.notes,
        )
        existing = _existing_releases(
            info, model_targets, archived, request.allow_downgrade, repo.config.delta_sources
        )
        tx.require_signers([request.model, "snapshot", "timestamp"])
        path = target_path_for(request.model, request.build, image_name)
        length, sha256, stored = _store_image(repo, request.image, path)
        created = [stored] if stored is not None else []
        try:
            model_targets.targets[path] = TargetFile(
                length, {"sha256": sha256}, path, unrecognized_fields={"custom": info.to_custom()}
            )
            sources = [r for r in existing if is_newer_build(info.build, r.info.build)]
            deltas = _add_deltas(
                repo,
                model_targets,
                PublishedRelease(path, length, sha256, info),
                sources[-repo.config.delta_sources :] if repo.config.delta_sources else [],
                created,
                progress,
            )
            _archive_beyond_window(tx, request.model, repo.config.current_builds)
            tx.commit()
        except BaseException:
            for file in created:
                file.unlink(missing_ok=True)
                _remove_empty_dirs(file.parent, repo.layout.targets_dir)
            raise
    return PublishedRelease(path, length, sha256, info, tuple(deltas))


def _add_deltas(
    repo: Repository,
    model_targets: Targets,
    new: PublishedRelease,
    sources: list[PublishedRelease],
    created: list[Path],
    progress: DeltaProgress | None,
) -> list[PublishedDelta]:
    """Build, store and list a delta from each source build to the new release."""
    new_file = repo.layout.target_file(new.target_path, new.sha256)
    published = []
    for source in reversed(sources):  # newest source first: the likeliest to be asked for
        source_file = repo.layout.target_file(source.target_path, source.sha256)
        if not source_file.is_file():
            continue  # an image not kept here (e.g. pruned): no delta from it
        path = delta_target_path(new.info.model, new.info.build, source.info.build)
        label = f"delta {source.info.build} -> {new.info.build}"
        with tempfile.TemporaryDirectory(dir=repo.layout.targets_dir) as tmp:
            patch = Path(tmp) / "delta.patch"
            build_delta(source_file, new_file, patch, progress=_labelled(progress, label))
            if patch.stat().st_size >= new.length:
                continue  # no smaller than the full image: not worth offering
            length, sha256, stored = _store_image(repo, patch, path)
        if stored is not None:
            created.append(stored)
        custom = DeltaTargetInfo(
            model=new.info.model,
            build=new.info.build,
            source_build=source.info.build,
            source_sha256=source.sha256,
            full_target=new.target_path,
            full_sha256=new.sha256,
            full_length=new.length,
        ).to_custom()
        model_targets.targets[path] = TargetFile(
            length, {"sha256": sha256}, path, unrecognized_fields={"custom": custom}
        )
        published.append(PublishedDelta(path, source.info.build, length))
    return published


def _labelled(progress: DeltaProgress | None, label: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    report = progress

    def call(done: int, total: int) -> None:
        report(label, done, total)

    return call


def _archive_beyond_window(tx: Transaction, model: str, keep: int) -> None:
    """Move every target of the model's oldest builds past the newest ``keep`` builds
    from the model's role to the archive bin its path hashes to (still signed, still
    served); only those bins are re-signed."""
    current = tx.state.model(model).signed.targets
    builds = sorted({path.split("/")[1] for path in current}, key=build_sort_key)
    retired = set(builds[:-keep]) if len(builds) > keep else set()
    if not retired:
        return
    for path in [p for p in current if p.split("/")[1] in retired]:
        tx.edit_archive_bin(model, path).targets[path] = current.pop(path)


def _existing_releases(
    info: ReleaseInfo,
    model_targets: Targets,
    archived: dict[str, TargetFile],
    allow_downgrade: bool,
    delta_sources: int,
) -> list[PublishedRelease]:
    """Check ``info`` against the model's releases (refusing a duplicate build, a lower
    build or patch level unless ``allow_downgrade``) and return those the new release
    needs to know: all of them, or only the current ones when those decide.

    Every archived build sorts below every build in the model's role (a publication
    archives the lowest), so a build above the role's newest is above every archived
    build: then only the archive's top patch level is read from it, not every release.
    """
    current = _releases_in(model_targets.targets)
    if (
        not allow_downgrade
        and len(current) >= max(delta_sources, 1)
        and build_sort_key(info.build) > build_sort_key(current[-1].info.build)
    ):
        archived_top = _top_patch_level(archived)
        if archived_top is not None or not archived:
            _check_order(info, current, allow_downgrade, archived_top)
            return current
    existing = _releases_in({**archived, **model_targets.targets})
    _check_order(info, existing, allow_downgrade)
    return existing


def _top_patch_level(targets: dict[str, TargetFile]) -> date | None:
    """The highest security patch level among the full images in ``targets``, read
    from the signed ISO dates without parsing each release; None if there is none or
    one is not a plain ISO date (the caller then reads every release)."""
    levels = []
    for target in targets.values():
        custom = target.unrecognized_fields.get("custom")
        if isinstance(custom, dict) and custom.get("kind") == "full":
            level = custom.get("security_patch_level")
            if not isinstance(level, str) or len(level) != 10:
                return None
            levels.append(level)
    if not levels:
        return None
    try:
        return date.fromisoformat(max(levels))  # YYYY-MM-DD: text order is date order
    except ValueError:
        return None


def _check_order(
    info: ReleaseInfo,
    existing: list[PublishedRelease],
    allow_downgrade: bool,
    archived_top: date | None = None,
) -> None:
    for release in existing:
        if release.info.build == info.build:
            raise ReleaseRejectedError(
                f"build {info.build} of {info.model} is already published as {release.target_path}",
                hint="give the new image a new build id",
            )
    if not existing or allow_downgrade:
        return
    newest = existing[-1].info
    if build_sort_key(info.build) < build_sort_key(newest.build):
        raise ReleaseRejectedError(
            f"build {info.build} is older than {info.model}'s newest build {newest.build}",
            hint="use a newer build id, or --allow-downgrade if this is intended",
        )
    top_patch = max(r.info.security_patch_level for r in existing)
    if archived_top is not None:
        top_patch = max(top_patch, archived_top)
    if info.security_patch_level < top_patch:
        raise ReleaseRejectedError(
            f"security patch level {info.security_patch_level.isoformat()} is below "
            f"{info.model}'s newest {top_patch.isoformat()}",
            hint="devices refuse a lower patch level; use --allow-downgrade if this is intended",
        )


def _remove_empty_dirs(directory: Path, stop: Path) -> None:
    while directory != stop and directory.is_relative_to(stop):
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


def _check_image_readable(image: Path) -> None:
    try:
        with image.open("rb") as handle:
            if not handle.read(1):
                raise ImageError(f"image {image} is empty")
    except IsADirectoryError:
        raise ImageError(f"image {image} is a directory, not a file") from None
    except FileNotFoundError:
        raise ImageError(f"image {image} does not exist") from None
    except OSError as exc:
        raise ImageError(f"image {image} cannot be read: {exc.strerror}") from None


def _store_image(repo: Repository, image: Path, target_path: str) -> tuple[int, str, Path | None]:
    """Copy the image into the public tree under its hash, hashing as it copies (one pass).

    Returns length, sha256 and the stored path when this call created it (None when an
    identical file was already there).
    """
    staging_dir = repo.layout.targets_dir / target_path.rpartition("/")[0]
    staging_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".incoming.", dir=staging_dir)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    length = 0
    try:
        with os.fdopen(fd, "wb") as out, image.open("rb") as src:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                length += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        sha256 = digest.hexdigest()
        final = repo.layout.target_file(target_path, sha256)
        if final.exists():
            tmp.unlink()
            return length, sha256, None
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
        fsync_dir(final.parent)
        return length, sha256, final
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        _remove_empty_dirs(staging_dir, repo.layout.targets_dir)
        raise ImageError(f"image {image} could not be stored: {exc.strerror}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        _remove_empty_dirs(staging_dir, repo.layout.targets_dir)
        raise
