"""Target files: download to a staging file while hashing, refuse any byte that does not
match the signed length and hashes, and know which published files are already right."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from tuf.api import exceptions as tuf_errors

from patchline.errors import MirrorSourceUnreachableError, MirrorTargetRefusedError
from patchline.fsutil import atomic_writer, fsync_dir
from patchline.mirror.verify import VerifiedTarget
from patchline.transport.fetcher import CountingFetcher
from patchline.transport.reasons import network_reason

_READ = 1 << 20


def matches(path: Path, target: VerifiedTarget) -> bool:
    """Whether ``path`` exists and holds exactly the target's signed bytes.

    Raises MirrorTargetRefusedError when the target names a hash algorithm this
    machine does not have.
    """
    try:
        if path.stat().st_size != target.length:
            return False
        digests = _hashers(target)
        with path.open("rb") as handle:
            while chunk := handle.read(_READ):
                for digest in digests.values():
                    digest.update(chunk)
    except FileNotFoundError:
        return False
    return all(digests[algo].hexdigest() == want for algo, want in target.hashes.items())


def fetch_verified(
    fetcher: CountingFetcher,
    url: str,
    target: VerifiedTarget,
    staged: Path,
    on_bytes: Callable[[int], None] | None = None,
) -> None:
    """Download ``url`` into ``staged`` (replaced only when every byte verified).

    Raises MirrorTargetRefusedError when the bytes exceed or fall short of the signed
    length or fail a signed hash, MirrorSourceUnreachableError when the transfer fails;
    ``staged`` is then left as it was.
    """
    digests = _hashers(target)
    size = 0
    try:
        with atomic_writer(staged) as handle:
            for chunk in fetcher.fetch(url):
                size += len(chunk)
                if size > target.length:
                    raise MirrorTargetRefusedError(
                        f"{url} sends more than the signed {target.length} bytes of "
                        f"{target.path} (endless data)"
                    )
                for digest in digests.values():
                    digest.update(chunk)
                handle.write(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
            if size != target.length:
                raise MirrorTargetRefusedError(
                    f"{url} sent {size} bytes of {target.path}; its signed length is "
                    f"{target.length}"
                )
            for algo, want in target.hashes.items():
                if digests[algo].hexdigest() != want:
                    raise MirrorTargetRefusedError(
                        f"{url} sent bytes of {target.path} whose {algo} does not match "
                        "the signed hash: a tampered file",
                        hint="the mirror keeps serving its previous state; find out who "
                        "altered the source",
                    )
    except tuf_errors.DownloadHTTPError as exc:
        raise MirrorSourceUnreachableError(
            f"{url}: HTTP {exc.status_code}: the source lacks a target its metadata signs"
        ) from exc
    except tuf_errors.DownloadError as exc:
        raise MirrorSourceUnreachableError(
            f"{url}: transfer failed ({network_reason(exc)})"
        ) from exc


def publish_staged(staged: Path, final: Path) -> None:
    """Move a verified staged file to its published name, durably."""
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, final)
    fsync_dir(final.parent)


def _hashers(target: VerifiedTarget) -> dict[str, hashlib._Hash]:
    if not target.hashes:
        raise MirrorTargetRefusedError(f"target {target.path} is signed without any hash")
    try:
        return {algo: hashlib.new(algo) for algo in target.hashes}
    except ValueError as exc:
        raise MirrorTargetRefusedError(
            f"target {target.path} names a hash algorithm this machine lacks ({exc})"
        ) from exc
