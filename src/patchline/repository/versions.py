"""Build order now lives in ``patchline.transport.builds``."""

from patchline.transport.builds import build_sort_key  # re-exported until callers move

__all__ = ["build_sort_key"]
