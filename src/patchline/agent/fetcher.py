"""The fetcher and its connection pool now live in ``patchline.transport``."""

from patchline.transport.http import http_pool  # re-exported until callers move

__all__ = ["http_pool"]
