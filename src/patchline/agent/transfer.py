"""Resumable, verified download of one target into a staging file.

One pass: the body is read straight from the socket into reusable buffers, which one
thread hashes while another writes them (see ``sink``), so receiving, hashing and
writing overlap on two cores. A download that stopped (kill -9, lost link) resumes with an
HTTP Range request from the staging file's size; the prefix already on disk is hashed
once. The transfer is refused as soon as the source sends more than the signed length
(endless data), falls below a minimum throughput, or passes an overall deadline (slow
retrieval); python-tuf leaves those defences to the caller.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import FileIO
from pathlib import Path
from typing import Any

import urllib3
from tuf.api.metadata import TargetFile

from patchline.agent.device import Limits
from patchline.agent.sink import ALIGN, SLOT, HashingWriter, open_direct
from patchline.errors import (
    CardFileRefusedError,
    DownloadFailedError,
    EndlessDataError,
    InstallFailedError,
    SlowRetrievalError,
    SourceUnreachableError,
    TargetRefusedError,
)
from patchline.transport.card import open_on_card
from patchline.transport.fetcher import RedirectLoopError
from patchline.transport.http import is_redirect_left, repository_retries
from patchline.transport.reasons import network_reason
from patchline.transport.urls import file_url_path

MIN_READ = 64 << 10
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclass(frozen=True)
class Opened:
    """A byte stream of a target, starting at ``start``."""

    start: int
    #: Fills (part of) the given buffer and returns how many bytes it put there; 0 at
    #: the end.
    readinto: Callable[[memoryview], int]
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
            response = self._pool.request(
                "GET", url, headers=headers, preload_content=False, retries=repository_retries()
            )
        except urllib3.exceptions.HTTPError as exc:
            raise SourceUnreachableError(network_reason(exc)) from exc
        finished = False
        try:
            if response.status == 206:
                match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
                if match is None or int(match.group(1)) != start:
                    raise DownloadFailedError(
                        f"the host answered a range request with the wrong range "
                        f"({response.headers.get('Content-Range')!r})"
                    )
                yield Opened(start, _readinto(response), response.shutdown)
            elif response.status == 200:
                yield Opened(0, _readinto(response), response.shutdown)
            elif is_redirect_left(response):
                raise DownloadFailedError(str(RedirectLoopError(response.headers["Location"])))
            elif response.status == 416 and start:
                response.drain_conn()
                with self.open(url, 0) as whole:
                    yield whole
            else:
                raise DownloadFailedError(f"HTTP {response.status} for {url.rsplit('/', 1)[-1]}")
            finished = True
        finally:
            if not finished:  # bytes may be left on the wire: never hand this connection on
                response.close()
            response.release_conn()


class FileOpener:
    """Opens ``file://`` targets (SD card, USB stick) from an offset; below ``card`` (the
    card's folder) no link is followed and only a regular file is read."""

    def __init__(self, card: Path | None = None) -> None:
        self._card = card

    @contextmanager
    def open(self, url: str, start: int) -> Iterator[Opened]:
        """Yield the file's bytes from ``start``; CardFileRefusedError for a link on the
        card or a file that is not a regular file."""
        path = file_url_path(url)
        try:
            if self._card is None:
                handle: FileIO = path.open("rb", buffering=0)
            else:
                what = f"the card's image {path.name}"
                handle = open_on_card(self._card, _on_card(self._card, path, what), what)
        except OSError as exc:
            raise DownloadFailedError(f"cannot read {path}: {exc.strerror}") from None
        with handle:
            handle.seek(start)
            yield Opened(start, handle.readinto, _no_stop)


def opener_for(
    url: str, pool: urllib3.PoolManager, card: Path | None = None
) -> HttpOpener | FileOpener:
    """The opener for ``url``'s scheme; ``card`` is the folder of a card source."""
    return FileOpener(card) if url.startswith("file:") else HttpOpener(pool)


def _on_card(card: Path, path: Path, what: str) -> str:
    """``path`` relative to ``card``; CardFileRefusedError when it is not below it."""
    if not path.is_relative_to(card):
        raise CardFileRefusedError(f"{what} is not on the card ({path})")
    return path.relative_to(card).as_posix()


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
    direct_fd = open_direct(staging)
    watchdog = _Watchdog(opened.stop, limits, monotonic, have, length)
    done = have
    endless = False
    try:
        os.ftruncate(fd, have)
        sink = HashingWriter(fd, list(hashers.values()), have, direct_fd=direct_fd)
        with sink, watchdog:
            # Reads sized to about a quarter second of the current rate (so a kill or a
            # stop loses little) and ending on a block boundary (so they can be written
            # with O_DIRECT), never more than one byte past the signed length.
            started = monotonic()
            while True:
                size = _read_size(done - have, monotonic() - started)
                size = min(size - (done + size) % ALIGN, length - done + 1)
                buffer = sink.buffer()
                n = opened.readinto(buffer[:size])
                if not n:
                    break
                if done + n > length:
                    endless = True
                    break
                sink.commit(n)
                done += n
                watchdog.received = done - have
                if on_progress is not None:
                    on_progress(done)
    except (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException, ValueError) as exc:
        if watchdog.reason:
            raise SlowRetrievalError(watchdog.reason) from None
        if isinstance(exc, (urllib3.exceptions.TimeoutError, TimeoutError)):
            raise SlowRetrievalError("the source stopped sending (timed out)") from None
        raise DownloadFailedError(f"the transfer broke off ({exc})") from None
    finally:
        os.close(fd)
        if direct_fd is not None:
            os.close(direct_fd)
    if endless:
        staging.unlink(missing_ok=True)
        raise EndlessDataError(
            f"the source sent more than the signed length of {length:,} bytes (endless data)"
        )
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
    buffer = memoryview(bytearray(SLOT))
    with path.open("rb", buffering=0) as handle:
        left = length
        while left and (n := handle.readinto(buffer[: min(SLOT, left)])):
            for hasher in hashers.values():
                hasher.update(buffer[:n])
            left -= n


def _check_space(directory: Path, needed: int) -> None:
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise InstallFailedError(
            f"not enough space: the update needs {needed:,} more bytes, {free:,} are free",
            hint="free some space on the device, then try again",
        )


def _read_size(received: int, elapsed: float) -> int:
    rate = received / elapsed if elapsed > 0 else 0.0
    return int(min(SLOT, max(MIN_READ, rate / 4)))


def _readinto(response: urllib3.BaseHTTPResponse) -> Callable[[memoryview], int]:
    """The fastest way to fill a buffer from ``response``'s body.

    An unencoded body is read with http.client's own ``readinto`` (urllib3 keeps that
    response as ``_fp``), straight from the socket into the buffer. urllib3's
    ``readinto`` reads into a new bytes object and copies it, so it is used only when
    something must be decoded or the layout is not the one expected.
    """
    raw = getattr(response, "_fp", None)
    if isinstance(raw, http.client.HTTPResponse) and not response.headers.get("Content-Encoding"):
        return raw.readinto
    return response.readinto


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
