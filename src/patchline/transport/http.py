"""Connection pools for reading repositories and talking to the device API, and the
redirect rules for GETs of repository files."""

from __future__ import annotations

import urllib3

MAX_REDIRECTS = 3


def http_pool(
    connect_timeout: float, read_timeout: float, *, user_agent: str = "patchline-agent"
) -> urllib3.PoolManager:
    """A connection pool that fails fast: one connect attempt, no silent read retries.

    Requests follow no redirect unless they pass ``repository_retries()``."""
    return urllib3.PoolManager(
        retries=urllib3.Retry(total=0, redirect=0, raise_on_status=False),
        timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
        headers={"User-Agent": user_agent},
    )


def repository_retries() -> urllib3.Retry:
    """Retry settings for GETs of repository files: nothing retried, up to
    ``MAX_REDIRECTS`` redirects followed; past that the last 3xx answer is returned."""
    return urllib3.Retry(
        total=None,
        connect=0,
        read=0,
        status=0,
        other=0,
        redirect=MAX_REDIRECTS,
        raise_on_redirect=False,
        raise_on_status=False,
    )


def is_redirect_left(response: urllib3.BaseHTTPResponse) -> bool:
    """True when ``response`` is a redirect that was not followed (too many of them)."""
    return 300 <= response.status < 400 and bool(response.headers.get("Location"))


def discard(response: urllib3.BaseHTTPResponse) -> None:
    """Close a response whose body was not read to its end, so its connection is not
    handed to the next request with bytes still on the wire."""
    response.close()
    response.release_conn()
