"""One full TUF refresh of one source with python-tuf's ngclient, and what it verified.

Every source shares the device's one metadata directory, so a source can never take
the device below metadata it has already trusted (rollback), and each source is
refreshed whole (never a mix of files from several sources).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, TargetFile, Targets
from tuf.ngclient import Updater

from patchline.agent.sources import Source, SourceKind
from patchline.errors import (
    MetadataRefusedError,
    NoBundleError,
    SlowRetrievalError,
    SourceError,
    SourceUnreachableError,
)
from patchline.transport.fetcher import SourceFetcher
from patchline.transport.reasons import TufFailure, classify_tuf_error
from patchline.wire.paths import UnsafePathError, check_relative, consistent_name
from patchline.wire.release import model_lookup_path

_WHO = {
    SourceKind.BUNDLE: "the card",
    SourceKind.SERVER: "the server",
    SourceKind.MIRROR: "the mirror",
}


class VerifiedSource(Protocol):
    """Any source whose metadata verified: an online repository or an offline bundle."""

    @property
    def source(self) -> Source:
        """Where it came from."""
        ...

    def model_targets(self, model: str) -> dict[str, TargetFile]:
        """The verified targets signed for ``model``."""
        ...

    def lookup(self, path: str) -> TargetFile | None:
        """The verified TargetFile for ``path``, or None."""
        ...

    def target_url(self, target: TargetFile) -> str:
        """Where the target's bytes are."""
        ...


@dataclass
class TrustedRepository:
    """A source whose top-level metadata verified; targets are looked up through it."""

    source: Source
    updater: Updater
    metadata_dir: Path
    fetcher: SourceFetcher
    now: datetime

    def model_targets(self, model: str) -> dict[str, TargetFile]:
        """The targets signed in ``model``'s current role (loads only that role).

        Raises NoBundleError when the repository has no role for the model.
        """
        self.lookup(model_lookup_path(model))
        cached = self.metadata_dir / f"{quote(model, safe='')}.json"
        if not cached.is_file():
            raise NoBundleError(f"no releases for model {model}")
        role = Metadata[Targets].from_bytes(cached.read_bytes()).signed
        return dict(role.targets)

    def lookup(self, path: str) -> TargetFile | None:
        """The verified TargetFile for ``path``, or None when no role signs it."""
        try:
            return self.updater.get_targetinfo(path)
        except (tuf_errors.RepositoryError, tuf_errors.DownloadError) as exc:
            raise explain_tuf_error(exc, self.source, self.fetcher, self.now) from exc

    def target_url(self, target: TargetFile) -> str:
        """Where the target's bytes are, with the hash prefix of consistent snapshots."""
        return target_url(self.updater, self.source.url.targets_url, target)


def target_url(updater: Updater, base_url: str, target: TargetFile) -> str:
    """The URL of ``target`` under ``base_url``, as ngclient would form it.

    Raises MetadataRefusedError for a signed path that could name a file outside the
    targets folder (``..``, absolute, ...).
    """
    path = target.path
    try:
        check_relative(path)
        trusted = updater._trusted_set
        if trusted.root.consistent_snapshot and updater.config.prefix_targets_with_hash:
            path = consistent_name(path, next(iter(target.hashes.values())))
    except UnsafePathError as exc:
        raise MetadataRefusedError(str(exc)) from None
    return f"{base_url.rstrip('/')}/{path}"


def open_updater(
    metadata_dir: Path,
    metadata_url: str,
    targets_url: str,
    fetcher: SourceFetcher,
    bootstrap: bytes | None,
) -> Updater:
    """An ngclient Updater on ``metadata_dir`` for one source; ``bootstrap`` is the root
    the device shipped with (None: trust the cached root.json, as the conformance
    client's ``init`` leaves it)."""
    metadata_dir.mkdir(parents=True, exist_ok=True)
    return Updater(
        metadata_dir=str(metadata_dir),
        metadata_base_url=metadata_url,
        target_base_url=targets_url,
        fetcher=fetcher,
        bootstrap=bootstrap,
    )


def refresh_source(
    metadata_dir: Path,
    source: Source,
    fetcher: SourceFetcher,
    bootstrap: bytes | None,
    now: datetime,
) -> TrustedRepository:
    """Refresh root, timestamp, snapshot and targets from ``source``.

    Raises a SourceError subclass saying, for a person, why the source was refused.
    """
    if source.kind is SourceKind.BUNDLE and not Path(source.location).is_dir():
        raise SourceUnreachableError(f"{source.location} is not there (no card or stick?)")
    try:
        updater = open_updater(
            metadata_dir, source.url.metadata_url, source.url.targets_url, fetcher, bootstrap
        )
        # Expiry is judged on the device clock the agent was given (ngclient has no
        # public hook for a trusted time; it reads the system clock once per Updater).
        updater._trusted_set.reference_time = now
        updater.refresh()
    except (tuf_errors.RepositoryError, tuf_errors.DownloadError) as exc:
        raise explain_tuf_error(exc, source, fetcher, now) from exc
    return TrustedRepository(source, updater, metadata_dir, fetcher, now)


def explain_tuf_error(
    exc: Exception, source: Source, fetcher: SourceFetcher, now: datetime
) -> SourceError:
    """Turn a python-tuf error into the agent's error, in words a person understands."""
    if isinstance(exc.__cause__, SourceError):  # a refusal of our own, e.g. a link on a card
        return exc.__cause__
    reason = classify_tuf_error(exc)
    detail = reason.detail
    match reason.failure:
        case TufFailure.NOT_METADATA:
            return SourceUnreachableError(reason.html_page(_WHO[source.kind]))
        case TufFailure.REDIRECT_LOOP | TufFailure.UNREACHABLE:
            return SourceUnreachableError(detail)
        case TufFailure.SLOW:
            return SlowRetrievalError(detail)
        case TufFailure.EXPIRED:
            clock = f"device clock {now:%Y-%m-%d %H:%M} UTC"
            return MetadataRefusedError(f"metadata expired {_expired_since(fetcher, now)}({clock})")
        case TufFailure.ROLLBACK:
            return MetadataRefusedError(
                f"metadata is older than what this device already trusts ({detail}); "
                "a stale mirror or a rollback attack"
            )
        case TufFailure.UNSIGNED:
            return MetadataRefusedError(f"metadata is not signed by the trusted keys ({detail})")
        case TufFailure.HASH_MISMATCH:
            return MetadataRefusedError(f"metadata does not match its signed hash ({detail})")
        case TufFailure.REFUSED:
            return MetadataRefusedError(f"metadata refused: {detail}")
        case TufFailure.HTTP_STATUS:
            if source.kind is SourceKind.BUNDLE and reason.status == 404:
                return NoBundleError(f"no update bundle in this folder ({detail})")
            return SourceUnreachableError(f"HTTP {reason.status} ({detail})")
        case TufFailure.TOO_LONG:
            return MetadataRefusedError(f"metadata longer than allowed ({detail})")


def _expired_since(fetcher: SourceFetcher, now: datetime) -> str:
    if fetcher.last_fetched is None:
        return ""
    url, data = fetcher.last_fetched
    try:
        expires = Metadata.from_bytes(data).signed.expires
    except Exception:
        return ""
    age = now.astimezone(UTC) - expires
    days = age.days
    when = f"{days} days ago" if days >= 1 else f"{int(age.total_seconds() // 3600)} hours ago"
    name = url.rsplit("/", 1)[-1]
    return f"{when}: {name} expired {expires:%Y-%m-%d %H:%M} UTC "
