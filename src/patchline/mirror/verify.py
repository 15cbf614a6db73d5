"""Verify a source's whole repository with python-tuf's ngclient: the root chain, the
top-level roles and every delegated role, each kept with the exact bytes it verified.

ngclient walks delegations only on a target lookup; a mirror must verify every role
it publishes, so it loads each delegated role through the Updater's own loader, in
the order the delegations name them. Freshness is judged on the injected clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Delegations, Metadata, Targets
from tuf.ngclient import Updater

from patchline.errors import (
    MirrorError,
    MirrorExpiredError,
    MirrorMetadataRefusedError,
    MirrorRollbackError,
    MirrorSetupError,
    MirrorSourceUnreachableError,
)
from patchline.mirror.layout import TOP_LEVEL, safe_role_name
from patchline.mirror.source import MirrorSource
from patchline.transport.fetcher import CountingFetcher
from patchline.transport.reasons import TufFailure, classify_tuf_error

PathCheck = Callable[[str], bool]


@dataclass(frozen=True)
class VerifiedRole:
    """One version of one role, and the exact bytes that verified."""

    name: str
    version: int
    data: bytes


@dataclass(frozen=True)
class VerifiedTarget:
    """A target signed by a role trusted for its path."""

    path: str
    length: int
    hashes: dict[str, str]

    @property
    def digest(self) -> str:
        """The hash naming the file in a consistent snapshot (ngclient uses the first)."""
        return next(iter(self.hashes.values()))


@dataclass(frozen=True)
class VerifiedState:
    """Everything a mirror may publish, verified whole."""

    roots: list[VerifiedRole]  # ascending, from the bootstrap root's version
    timestamp: VerifiedRole
    snapshot: VerifiedRole
    targets: VerifiedRole
    delegated: list[VerifiedRole]  # in delegation order, parents first
    target_files: list[VerifiedTarget]
    unreachable_roles: list[str]  # listed in the snapshot, delegated by no role: not published
    unauthorized_targets: list[str]  # signed by a role not trusted for the path: not published


def verify_source(
    trusted_dir: Path,
    bootstrap: bytes,
    source: MirrorSource,
    fetcher: CountingFetcher,
    now: datetime,
) -> VerifiedState:
    """Refresh ``trusted_dir`` from ``source`` and load every delegated role.

    ``bootstrap`` is the root the operator supplied; newer roots verified earlier are
    taken from ``trusted_dir``, so the source can never take the mirror below metadata
    it has already trusted. Raises MirrorSetupError for an invalid bootstrap root,
    MirrorSourceUnreachableError, MirrorMetadataRefusedError (MirrorRollbackError,
    MirrorExpiredError) with the reason in words.
    """
    trusted_dir.mkdir(parents=True, exist_ok=True)
    try:
        updater = Updater(
            metadata_dir=str(trusted_dir),
            metadata_base_url=source.metadata_url,
            target_base_url=source.targets_url,
            fetcher=fetcher,
            bootstrap=bootstrap,
        )
    except (tuf_errors.RepositoryError, ValueError) as exc:
        raise MirrorSetupError(
            f"the mirror's trusted root is not a valid, self-signed root ({exc})",
            hint="give the repository's 1.root.json (the one devices ship) with --root",
        ) from exc
    # No public hook exists for a trusted time: ngclient reads the clock once per Updater.
    updater._trusted_set.reference_time = now
    try:
        updater.refresh()
        if not updater._trusted_set.root.consistent_snapshot:
            raise MirrorMetadataRefusedError(
                "the source's root does not use consistent snapshots; a mirror copies only "
                "the consistent-snapshot layout"
            )
        chains = _load_every_role(updater)
    except (tuf_errors.RepositoryError, tuf_errors.DownloadError) as exc:
        raise explain_tuf_error(exc, source, now) from exc
    return _collect(updater, trusted_dir, bootstrap, chains)


def _delegates(delegations: Delegations | None) -> list[tuple[str, PathCheck]]:
    """The roles a delegations block names, each with the test its paths must pass."""
    if delegations is None:
        return []
    if delegations.roles is not None:
        return [(name, role.is_delegated_path) for name, role in delegations.roles.items()]
    succinct = delegations.succinct_roles
    if succinct is None:
        return []

    def bin_check(name: str) -> PathCheck:
        return lambda path: succinct.get_role_for_target(path) == name

    return [(name, bin_check(name)) for name in succinct.get_roles()]


def _load_every_role(updater: Updater) -> dict[str, list[PathCheck]]:
    """Load and verify every delegated role, breadth first from ``targets``; return each
    role with the path tests of the delegations leading to it."""
    trusted = updater._trusted_set
    chains: dict[str, list[PathCheck]] = {"targets": []}
    queue = ["targets"]
    while queue:
        parent = queue.pop(0)
        delegations = cast(Targets, trusted[parent]).delegations
        for name, check in _delegates(delegations):
            if name in chains:
                continue
            if name in TOP_LEVEL:
                raise MirrorMetadataRefusedError(f"role {parent} delegates to top-level {name}")
            safe_role_name(name)
            updater._load_targets(name, parent)
            chains[name] = [*chains[parent], check]
            queue.append(name)
    return chains


def _collect(
    updater: Updater, trusted_dir: Path, bootstrap: bytes, chains: dict[str, list[PathCheck]]
) -> VerifiedState:
    trusted = updater._trusted_set
    first_root = Metadata.from_bytes(bootstrap).signed.version
    roots = [
        VerifiedRole("root", v, (trusted_dir / "root_history" / f"{v}.root.json").read_bytes())
        for v in range(first_root, trusted.root.version + 1)
    ]
    _same(roots[-1].data, trusted.root, "root")

    def role(name: str) -> VerifiedRole:
        data = (trusted_dir / f"{quote(name, safe='')}.json").read_bytes()
        signed = trusted[name]
        _same(data, signed, name)
        return VerifiedRole(name, signed.version, data)

    targets: list[VerifiedTarget] = []
    unauthorized: list[str] = []
    for name, checks in chains.items():
        for path, info in cast(Targets, trusted[name]).targets.items():
            if all(check(path) for check in checks):
                targets.append(VerifiedTarget(path, info.length, dict(info.hashes)))
            else:
                unauthorized.append(f"{name}:{path}")
    listed = [m.removesuffix(".json") for m in trusted.snapshot.meta]
    return VerifiedState(
        roots=roots,
        timestamp=role("timestamp"),
        snapshot=role("snapshot"),
        targets=role("targets"),
        delegated=[role(name) for name in chains if name != "targets"],
        target_files=targets,
        unreachable_roles=[n for n in listed if n not in chains],
        unauthorized_targets=unauthorized,
    )


def _same(data: bytes, signed: Any, name: str) -> None:
    """Refuse bytes on disk that are not the metadata ngclient verified."""
    if Metadata.from_bytes(data).signed != signed:
        raise MirrorMetadataRefusedError(
            f"{name}.json in the mirror's trusted metadata changed while it was read"
        )


def explain_tuf_error(exc: Exception, source: MirrorSource, now: datetime) -> MirrorError:
    """A python-tuf error as the mirror's error, in words a person understands."""
    where = source.base_url
    reason = classify_tuf_error(exc)
    detail = reason.detail
    match reason.failure:
        case TufFailure.NOT_METADATA:
            return MirrorSourceUnreachableError(
                reason.html_page(where),
                hint="give the URL of the folder that holds metadata/ and targets/",
            )
        case TufFailure.REDIRECT_LOOP:
            return MirrorSourceUnreachableError(f"{where}: {detail}")
        case TufFailure.EXPIRED:
            return MirrorExpiredError(
                f"{where} serves expired metadata ({detail}; clock {now:%Y-%m-%d %H:%M} UTC): "
                "a freeze attack, or a repository that is no longer refreshed",
                hint="check this machine's clock, and that the repository runs "
                "`patchline repo refresh` on a timer",
            )
        case TufFailure.ROLLBACK:
            return MirrorRollbackError(
                f"{where} serves metadata older than what this mirror already holds ({detail}): "
                "a stale source or a rollback attack",
                hint="sync from an up-to-date source; the mirror keeps serving its newer copy",
            )
        case TufFailure.UNSIGNED:
            return MirrorMetadataRefusedError(
                f"{where} serves metadata not signed by the trusted keys ({detail})"
            )
        case TufFailure.HASH_MISMATCH:
            return MirrorMetadataRefusedError(
                f"{where} serves metadata that does not match its signed length or hash ({detail})"
            )
        case TufFailure.REFUSED:
            return MirrorMetadataRefusedError(f"{where}: metadata refused ({detail})")
        case TufFailure.HTTP_STATUS:
            return MirrorSourceUnreachableError(
                f"{where}: HTTP {reason.status} ({detail})",
                hint="check the URL names the folder that holds metadata/ and targets/",
            )
        case TufFailure.TOO_LONG:
            return MirrorMetadataRefusedError(
                f"{where} sends metadata longer than allowed ({detail})"
            )
        case TufFailure.UNREACHABLE | TufFailure.SLOW:
            return MirrorSourceUnreachableError(f"{where} is unreachable: {detail}")
