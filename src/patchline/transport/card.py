"""Reading files from a card (SD card, USB stick): no link on the card is followed, only
regular files are read, and no metadata file is read past python-tuf's own limits.

Anyone can write a card. A link on it could make the agent read a file of the device
(its key, ``/dev/zero``), a FIFO or device node could block or never end, and a metadata
file of gigabytes would be read whole into memory. Each is refused with a reason a
person can act on (a CardFileRefusedError, a SourceError), and the agent moves on to
its next source.
"""

from __future__ import annotations

import errno
import os
import stat
from io import FileIO
from pathlib import Path

from tuf.ngclient import UpdaterConfig

from patchline.errors import CardFileRefusedError
from patchline.wire.offline import OFFLINE_SNAPSHOT
from patchline.wire.paths import UnsafePathError, check_relative

CHUNK = 1 << 16
_NGCLIENT = UpdaterConfig()


def metadata_limit(filename: str) -> int:
    """The most bytes a metadata file of this name may have: ngclient's download limit
    for its role (root, timestamp, snapshot, or targets for every other role)."""
    if filename.endswith("root.json"):
        return _NGCLIENT.root_max_length
    if filename == "timestamp.json":
        return _NGCLIENT.timestamp_max_length
    if filename == OFFLINE_SNAPSHOT or filename.endswith("snapshot.json"):
        return _NGCLIENT.snapshot_max_length
    return _NGCLIENT.targets_max_length


def open_on_card(card: Path, relative: str, what: str) -> FileIO:
    """Open ``card / relative`` for reading, following no link at or below ``card``
    (the card's own folder may be reached through links, as a mount point can be).

    Raises FileNotFoundError (or NotADirectoryError) when the file is not there, and
    CardFileRefusedError, naming ``what``, for an unsafe path, a link or a file that is
    not a regular file.
    """
    try:
        parts = check_relative(relative)
    except UnsafePathError as exc:
        raise CardFileRefusedError(f"{what}: {exc}") from None
    fd = os.open(card, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            flags = os.O_RDONLY | os.O_NOFOLLOW | (os.O_NONBLOCK if last else os.O_DIRECTORY)
            try:
                opened = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(part, fd):
                    reason = _link_reason(card, parts[: depth + 1], what, last)
                    raise CardFileRefusedError(reason) from None
                raise
            os.close(fd)
            fd = opened
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CardFileRefusedError(f"{what} is not a regular file (a folder, FIFO or device)")
        os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
    return handle


def read_metadata(card: Path, relative: str) -> bytes:
    """The bytes of a metadata file on the card, at most ``metadata_limit`` of them.

    Raises FileNotFoundError when it is not there, CardFileRefusedError when it is a
    link, not a regular file, or larger than the limit (read no further than that).
    """
    name = relative.rsplit("/", 1)[-1]
    what = f"{name} on the card"
    limit = metadata_limit(name)
    with open_on_card(card, relative, what) as handle:
        return read_at_most(handle, limit, what)


def read_at_most(handle: FileIO, limit: int, what: str) -> bytes:
    """All of ``handle``'s bytes when there are at most ``limit``; CardFileRefusedError
    after reading ``limit + 1`` otherwise."""
    chunks: list[bytes] = []
    size = 0
    while chunk := handle.read(min(CHUNK, limit + 1 - size)):
        size += len(chunk)
        chunks.append(chunk)
        if size > limit:
            raise CardFileRefusedError(f"{what} is larger than {limit:,} bytes")
    return b"".join(chunks)


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _link_reason(card: Path, parts: tuple[str, ...], what: str, last: bool) -> str:
    link = card.joinpath(*parts)
    points_to = link.resolve()
    kind = "file" if last else "folder"
    if not points_to.is_relative_to(card.resolve()):
        where = f"a link to a {kind} outside the card ({points_to})"
    else:
        where = f"a link ({'/'.join(parts)} -> {os.readlink(link)})"
    verb = "is" if last else f"is reached through {'/'.join(parts)}, which is"
    return f"{what} {verb} {where}: the agent follows no link on a card"
