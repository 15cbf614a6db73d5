"""Fetching metadata for python-tuf's ngclient from a folder (file://) or over HTTP.

A missing file in a folder is reported as HTTP 404, which is what ngclient's root
probe loop waits for. The last metadata file fetched is remembered, so that an error
can say when the refused metadata expired.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

import urllib3
from tuf.api.exceptions import DownloadError, DownloadHTTPError
from tuf.api.exceptions import SlowRetrievalError as TufSlowRetrievalError
from tuf.ngclient import FetcherInterface

CHUNK = 1 << 20
_REMEMBER_UP_TO = 1 << 20


def file_url_path(url: str) -> Path:
    """The local path named by a ``file://`` URL."""
    return Path(unquote(urlparse(url).path))


def http_pool(connect_timeout: float, read_timeout: float) -> urllib3.PoolManager:
    """A connection pool that fails fast: one connect attempt, no silent read retries."""
    return urllib3.PoolManager(
        retries=urllib3.Retry(total=0, redirect=0, raise_on_status=False),
        timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
        headers={"User-Agent": "patchline-agent"},
    )


class SourceFetcher(FetcherInterface):
    """ngclient fetcher for ``file://`` folders and ``http(s)://`` hosts."""

    def __init__(self, pool: urllib3.PoolManager) -> None:
        self._pool = pool
        #: (url, bytes) of the last complete small file fetched, for error messages.
        self.last_fetched: tuple[str, bytes] | None = None

    def _fetch(self, url: str) -> Iterator[bytes]:
        if url.startswith("file:"):
            return self._remember(url, self._from_folder(url))
        try:
            response = self._pool.request("GET", url, preload_content=False)
        except urllib3.exceptions.MaxRetryError as exc:
            if isinstance(exc.reason, urllib3.exceptions.TimeoutError):
                raise TufSlowRetrievalError(f"timed out fetching {url}") from exc
            raise
        if response.status >= 400:
            _discard(response)  # its unread body must not reach the next request
            raise DownloadHTTPError(f"HTTP {response.status} for {url}", response.status)
        return self._remember(url, self._stream(response))

    @staticmethod
    def _from_folder(url: str) -> Iterator[bytes]:
        path = file_url_path(url)
        try:
            handle = path.open("rb")
        except (FileNotFoundError, NotADirectoryError):
            raise DownloadHTTPError(f"{path} not found", 404) from None
        return _read_chunks(handle)

    @staticmethod
    def _stream(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
        complete = False
        try:
            yield from response.stream(CHUNK)
            complete = True
        except urllib3.exceptions.TimeoutError as exc:
            raise TufSlowRetrievalError("timed out between bytes") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise DownloadError(f"transfer failed: {exc}") from exc
        finally:
            if complete:
                response.release_conn()
            else:  # stopped early (e.g. past the allowed length): never reuse it
                _discard(response)

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


def _discard(response: urllib3.BaseHTTPResponse) -> None:
    """Close a response whose body was not read to its end, so its connection is not
    handed to the next request with bytes still on the wire."""
    response.close()
    response.release_conn()


def _read_chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk
