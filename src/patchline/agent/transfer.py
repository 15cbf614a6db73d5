"""Resumable, verified download of one target into a staging file.

One pass: the bytes are hashed (in a second thread, so hashing overlaps the network)
while they are written. A download that stopped (kill -9, lost link) resumes with an
HTTP Range request from the staging file's size; the prefix already on disk is hashed
once. The transfer is refused as soon as the source sends more than the signed length
(endless data), falls below a minimum throughput, or passes an overall deadline (slow
retrieval); python-tuf leaves those defences to the caller.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from tuf.api.metadata import TargetFile

from patchline.agent.device import Limits
from patchline.agent.fetcher import file_url_path
from patchline.agent.trust import network_reason
from patchline.errors import (
    DownloadFailedError,
    EndlessDataError,
    InstallFailedError,
    SlowRetrievalError,
    SourceUnreachableError,
    TargetRefusedError,
)

CHUNK = 4 << 20
MIN_READ = 64 << 10
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclass(frozen=True)
class Opened:
    """A byte stream of a target, starting at ``start``."""

    start: int
    #: Reads at most the given number of bytes; b"" at the end.
    read: Callable[[int], bytes]
    #: Interrupts a read blocked in another thread (slow-retrieval watchdog).
    stop: Callable[[], None]


class HttpOpener:
    """Opens ``http(s)://`` targets with a Range request."""

    def __init__(self, pool: urllib3.PoolManager) -> None:
        self._pool = pool

    @contextmanager
    def open(self, url: str, start: int) -> Iterator[Opened]:
        """Yield the body from ``start`` (or from 0 when the host ignores Range)."""
        headers = {"Range": f"bytes={start}-"} if start else {}
        try:
            response = self._pool.request("GET", url, headers=headers, preload_content=False)
        except urllib3.exceptions.HTTPError as exc:
            raise SourceUnreachableError(network_reason(exc)) from exc
        try:
            if response.status == 206:
                match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
                if match is None or int(match.group(1)) != start:
                    raise DownloadFailedError(
                        f"the host answered a range request with the wrong range "
                        f"({response.headers.get('Content-Range')!r})"
                    )
                yield Opened(start, _reader(response), response.shutdown)
            elif response.status == 200:
                yield Opened(0, _reader(response), response.shutdown)
            elif response.status == 416 and start:
                response.drain_conn()
                with self.open(url, 0) as whole:
                    yield whole
            else:
                raise DownloadFailedError(f"HTTP {response.status} for {url.rsplit('/', 1)[-1]}")
        finally:
            response.release_conn()


class FileOpener:
    """Opens ``file://`` targets (SD card, USB stick) from an offset."""

    @contextmanager
    def open(self, url: str, start: int) -> Iterator[Opened]:
        """Yield the file's bytes from ``start``."""
        path = file_url_path(url)
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise DownloadFailedError(f"cannot read {path}: {exc.strerror}") from None
        with handle:
            handle.seek(start)
            yield Opened(start, handle.read, _no_stop)


def opener_for(url: str, pool: urllib3.PoolManager) -> HttpOpener | FileOpener:
    """The opener for ``url``'s scheme."""
    return FileOpener() if url.startswith("file:") else HttpOpener(pool)


def download_verified(
    opener: HttpOpener | FileOpener,
    url: str,
    target: TargetFile,
    staging: Path,
    limits: Limits,
    *,
    monotonic: Callable[[], float] = time.monotonic,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Make ``staging`` hold exactly ``target``'s bytes, resuming what is already there.

    On return the length and every hash match the signed target. Raises
    TargetRefusedError (hash or length wrong; the staging file is removed),
    EndlessDataError, SlowRetrievalError, DownloadFailedError or SourceUnreachableError
    (the staging file is kept, to resume from), InstallFailedError when the disk is full.
    The staging file is not fsynced here: the install step does that before it becomes
    a slot (a killed process loses nothing the page cache holds).
    """
    hashers = _hashers(target)
    have = staging.stat().st_size if staging.exists() else 0
    if have > target.length:
        staging.unlink()
        have = 0
    _check_space(staging.parent, target.length - have)
    if have:
        _hash_prefix(staging, have, hashers)
    if have < target.length:
        with opener.open(url, have) as opened:
            if opened.start != have:  # the host ignored Range: start over
                hashers = _hashers(target)
                have = 0
            _receive(opened, staging, have, target.length, hashers, limits, monotonic, on_progress)
    _check_digests(target, hashers, staging)


def _receive(
    opened: Opened,
    staging: Path,
    have: int,
    length: int,
    hashers: dict[str, Any],
    limits: Limits,
    monotonic: Callable[[], float],
    on_progress: Callable[[int], None] | None,
) -> None:
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT, 0o644)
    watchdog = _Watchdog(opened.stop, limits, monotonic, have, length)
    with os.fdopen(fd, "wb") as out, _HashThread(hashers) as hasher, watchdog:
        out.truncate(have)
        out.seek(have)
        done = have
        try:
            # Reads sized to about a quarter second of the current rate (so a kill or a
            # stop loses little), never more than one byte past the signed length.
            started = monotonic()
            while chunk := opened.read(
                min(_read_size(done - have, monotonic() - started), length - done + 1)
            ):
                if done + len(chunk) > length:
                    out.close()
                    staging.unlink(missing_ok=True)
                    raise EndlessDataError(
                        f"the source sent more than the signed length of {length:,} bytes "
                        "(endless data)"
                    )
                out.write(chunk)
                hasher.feed(chunk)
                done += len(chunk)
                watchdog.received = done - have
                if on_progress is not None:
                    on_progress(done)
        except (OSError, urllib3.exceptions.HTTPError, ValueError) as exc:
            if watchdog.reason:
                raise SlowRetrievalError(watchdog.reason) from None
            if isinstance(exc, urllib3.exceptions.TimeoutError):
                raise SlowRetrievalError("the source stopped sending (timed out)") from None
            raise DownloadFailedError(f"the transfer broke off ({exc})") from None
    if watchdog.reason:
        raise SlowRetrievalError(watchdog.reason)
    if done != length:
        raise DownloadFailedError(f"the transfer stopped after {done:,} of {length:,} bytes")


def _check_digests(target: TargetFile, hashers: dict[str, Any], staging: Path) -> None:
    size = staging.stat().st_size
    if size != target.length:
        staging.unlink(missing_ok=True)
        raise TargetRefusedError(f"length {size:,} is not the signed {target.length:,}")
    for name, expected in target.hashes.items():
        got = hashers[name].hexdigest()
        if got != expected:
            staging.unlink(missing_ok=True)
            raise TargetRefusedError(
                f"{name} {got[:16]}... is not the signed {expected[:16]}... (tampered image)"
            )


def _hashers(target: TargetFile) -> dict[str, Any]:
    if not target.hashes:
        raise TargetRefusedError(f"target {target.path} carries no hash")
    try:
        return {name: hashlib.new(name) for name in target.hashes}
    except ValueError:
        raise TargetRefusedError(
            f"target {target.path} uses an unsupported hash ({', '.join(target.hashes)})"
        ) from None


def _hash_prefix(path: Path, length: int, hashers: dict[str, Any]) -> None:
    with path.open("rb") as handle:
        left = length
        while left and (chunk := handle.read(min(CHUNK * 4, left))):
            for hasher in hashers.values():
                hasher.update(chunk)
            left -= len(chunk)


def _check_space(directory: Path, needed: int) -> None:
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise InstallFailedError(
            f"not enough space: the update needs {needed:,} more bytes, {free:,} are free",
            hint="free some space on the device, then try again",
        )


def _read_size(received: int, elapsed: float) -> int:
    rate = received / elapsed if elapsed > 0 else 0.0
    return int(min(CHUNK, max(MIN_READ, rate / 4)))


def _reader(response: urllib3.BaseHTTPResponse) -> Callable[[int], bytes]:
    def read(amount: int) -> bytes:
        return response.read(amount)

    return read


def _no_stop() -> None:
    """Local files need no interrupting."""


class _Watchdog:
    """Checks the deadline and the minimum throughput from a second thread, and stops the
    transfer (interrupting a blocked read) when either fails."""

    def __init__(
        self,
        stop: Callable[[], None],
        limits: Limits,
        monotonic: Callable[[], float],
        have: int,
        length: int,
    ) -> None:
        self._stop = stop
        self._limits = limits
        self._monotonic = monotonic
        self._have = have
        self._length = length
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.received = 0
        self.reason = ""

    def __enter__(self) -> _Watchdog:
        self._started = self._monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        limits = self._limits
        while not self._done.wait(0.1):
            elapsed = self._monotonic() - self._started
            if elapsed > limits.deadline_seconds:
                self.reason = (
                    f"download did not finish within {limits.deadline_seconds:.0f} s "
                    f"({self._have + self.received:,} of {self._length:,} bytes)"
                )
            elif elapsed > limits.grace_seconds:
                rate = self.received / elapsed
                if rate < limits.min_bytes_per_second:
                    self.reason = (
                        f"the source sends {rate:,.0f} bytes/s, below the minimum of "
                        f"{limits.min_bytes_per_second:,} (slow retrieval)"
                    )
            if self.reason:
                self._stop()
                return


class _HashThread:
    """Hashes chunks in a second thread (hashlib releases the GIL), in order, with a
    bounded queue so memory stays small."""

    def __init__(self, hashers: dict[str, Any]) -> None:
        self._hashers = list(hashers.values())
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _HashThread:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._queue.put(None)
        self._thread.join()

    def feed(self, chunk: bytes) -> None:
        """Queue ``chunk`` to be hashed after every chunk fed before it."""
        self._queue.put(chunk)

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            for hasher in self._hashers:
                hasher.update(chunk)
