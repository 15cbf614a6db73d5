"""Fetching metadata for python-tuf's ngclient from a folder (file://) or over HTTP.

A missing file in a folder is reported as HTTP 404, which is what ngclient's root
probe loop waits for. On a card (a folder given as ``card``) no link is followed and
only regular files are read (``patchline.transport.card``). Over HTTP up to
``MAX_REDIRECTS`` redirects are followed (a mirror behind a CDN; every byte is verified
against signed metadata, so where it came from does not matter), and an HTML page is
refused as what it is. The last metadata file fetched is remembered, so that an error
can say when the refused metadata expired. Given a ``Pace``, a metadata file that
arrives slower than its minimum throughput or past its deadline is refused as slow
retrieval (a host trickling bytes just inside the read timeout would otherwise hold the
client for as long as it likes). ``CountingFetcher`` also records every file
it transferred whole (a mirror's sync counts them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import FileIO
from pathlib import Path
from typing import BinaryIO

import urllib3
from tuf.api.exceptions import DownloadError, DownloadHTTPError
from tuf.api.exceptions import SlowRetrievalError as TufSlowRetrievalError
from tuf.ngclient import FetcherInterface

from patchline.transport.card import open_on_card
from patchline.transport.http import MAX_REDIRECTS, discard, is_redirect_left, repository_retries
from patchline.transport.urls import file_url_path

CHUNK = 1 << 20
_REMEMBER_UP_TO = 1 << 20
_HTML = frozenset({"text/html", "application/xhtml+xml"})


class RedirectLoopError(DownloadError):
    """The host redirected more than ``MAX_REDIRECTS`` times."""

    def __init__(self, location: str) -> None:
        super().__init__(
            f"redirected more than {MAX_REDIRECTS} times (last to {location}): a redirect loop?"
        )
        self.location = location


class NotMetadataError(DownloadError):
    """The host answered an HTML page where metadata was asked for."""

    def __init__(self, url: str, content_type: str) -> None:
        super().__init__(f"{url} answered {content_type}, not TUF metadata")
        self.url = url
        self.content_type = content_type


class SlowMetadataError(TufSlowRetrievalError):
    """A metadata file arrived below the minimum throughput or past its deadline."""


@dataclass(frozen=True)
class Pace:
    """How slowly one metadata file may arrive: after ``grace_seconds``, at least
    ``min_bytes_per_second`` on average, and the whole of it within ``deadline_seconds``."""

    min_bytes_per_second: int
    grace_seconds: float
    deadline_seconds: float

    def check(self, received: int, elapsed: float) -> None:
        """Raise SlowMetadataError when ``received`` bytes in ``elapsed`` seconds is too
        slow."""
        if elapsed > self.deadline_seconds:
            raise SlowMetadataError(
                f"metadata did not arrive within {self.deadline_seconds:.0f} s "
                f"({received:,} bytes; slow retrieval)"
            )
        if elapsed > self.grace_seconds and received / elapsed < self.min_bytes_per_second:
            raise SlowMetadataError(
                f"the source sends metadata at {received / elapsed:,.0f} bytes/s, below the "
                f"minimum of {self.min_bytes_per_second:,} (slow retrieval)"
            )


class SourceFetcher(FetcherInterface):
    """ngclient fetcher for ``file://`` folders and ``http(s)://`` hosts."""

    def __init__(
        self,
        pool: urllib3.PoolManager,
        card: Path | None = None,
        pace: Pace | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._card = card
        self._pace = pace
        self._monotonic = monotonic
        #: (url, bytes) of the last complete small file fetched, for error messages.
        self.last_fetched: tuple[str, bytes] | None = None

    def on_card(self, card: Path) -> SourceFetcher:
        """A fetcher on the same pool reading the card folder ``card`` (links refused)."""
        return SourceFetcher(self._pool, card.absolute(), self._pace, self._monotonic)

    def _fetch(self, url: str) -> Iterator[bytes]:
        if url.startswith("file:"):
            return self._remember(url, self._from_folder(url))
        try:
            response = self._pool.request(
                "GET", url, preload_content=False, retries=repository_retries()
            )
        except urllib3.exceptions.MaxRetryError as exc:
            if isinstance(exc.reason, urllib3.exceptions.TimeoutError):
                raise TufSlowRetrievalError(f"timed out fetching {url}") from exc
            raise
        if response.status >= 400 or is_redirect_left(response):
            discard(response)  # its unread body must not reach the next request
            if response.status >= 400:
                raise DownloadHTTPError(f"HTTP {response.status} for {url}", response.status)
            raise RedirectLoopError(response.headers["Location"])
        content_type = response.headers.get("Content-Type", "")
        if content_type.split(";", 1)[0].strip().lower() in _HTML:
            discard(response)
            raise NotMetadataError(url, content_type)
        return self._remember(url, self._stream(response, self._pace, self._monotonic))

    def _from_folder(self, url: str) -> Iterator[bytes]:
        path = file_url_path(url)
        try:
            if self._card is None:
                handle: BinaryIO | FileIO = path.open("rb")
            elif not path.is_relative_to(self._card):
                raise DownloadHTTPError(f"{path} is not on the card", 404)
            else:
                relative = path.relative_to(self._card).as_posix()
                handle = open_on_card(self._card, relative, f"{path.name} on the card")
        except (FileNotFoundError, NotADirectoryError):
            raise DownloadHTTPError(f"{path} not found", 404) from None
        return _read_chunks(handle)

    @staticmethod
    def _stream(
        response: urllib3.BaseHTTPResponse, pace: Pace | None, monotonic: Callable[[], float]
    ) -> Iterator[bytes]:
        complete = False
        started = monotonic()
        received = 0
        try:
            # read1 returns whatever has arrived, so the pace is judged as bytes trickle in.
            while chunk := response.read1(CHUNK):
                received += len(chunk)
                if pace is not None:
                    pace.check(received, monotonic() - started)
                yield chunk
            complete = True
        except urllib3.exceptions.TimeoutError as exc:
            raise TufSlowRetrievalError("timed out between bytes") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise DownloadError(f"transfer failed: {exc}") from exc
        finally:
            if complete:
                response.release_conn()
            else:  # stopped early (e.g. past the allowed length): never reuse it
                discard(response)

    def _remember(self, url: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        kept: list[bytes] = []
        size = 0
        for chunk in chunks:
            size += len(chunk)
            if size <= _REMEMBER_UP_TO:
                kept.append(chunk)
            yield chunk
        if size <= _REMEMBER_UP_TO:
            self.last_fetched = (url, b"".join(kept))


def _read_chunks(handle: BinaryIO | FileIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk


@dataclass(frozen=True)
class Transfer:
    """One file fetched whole."""

    url: str
    size: int


class CountingFetcher(SourceFetcher):
    """A ``SourceFetcher`` recording every file it transferred whole."""

    def __init__(self, pool: urllib3.PoolManager) -> None:
        super().__init__(pool)
        self.transfers: list[Transfer] = []

    def _fetch(self, url: str) -> Iterator[bytes]:
        return self._count(url, super()._fetch(url))

    def _count(self, url: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        size = 0
        for chunk in chunks:
            size += len(chunk)
            yield chunk
        self.transfers.append(Transfer(url, size))
