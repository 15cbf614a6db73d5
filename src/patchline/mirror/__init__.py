"""Mirrors: a verified copy of the signed repository that any static host can serve.

    sync_mirror(source, dest, root=...)   bring a mirror up to the source's signed state

A mirror holds no key; devices verify what it serves themselves.
"""

from patchline.mirror.publish import Published
from patchline.mirror.source import MirrorSource
from patchline.mirror.sync import SyncProgress, SyncResult, sync_mirror

__all__ = ["MirrorSource", "Published", "SyncProgress", "SyncResult", "sync_mirror"]
