"""Target paths from signed metadata, checked before any file is opened under them.

A target path is a name in TUF metadata, not a file-system path: a key holder can sign
any string, ``alpha/../../../etc/cron.d/x`` included. Every side that turns one into a
file name (the exporter, the publisher, the mirror, the agent reading a card) goes
through ``path_under`` or ``consistent_target_file``, so none of them opens a file
outside the folder the path is meant to name a file in.
"""

from __future__ import annotations

from pathlib import Path


class UnsafePathError(ValueError):
    """A path from metadata that could name a file outside its folder."""


def check_relative(path: str) -> tuple[str, ...]:
    """The ``/``-separated segments of ``path`` when it is a plain relative path.

    Raises UnsafePathError, naming the path and what is wrong, for an empty or absolute
    path, a ``..`` or ``.`` segment, an empty segment (``a//b``, a trailing ``/``), a
    backslash or a NUL character.
    """
    problem = ""
    if not path:
        problem = "it is empty"
    elif "\0" in path:
        problem = "it holds a NUL character"
    elif "\\" in path:
        problem = "it holds a backslash"
    elif path.startswith("/"):
        problem = "it is absolute"
    parts = tuple(path.split("/"))
    if not problem and ".." in parts:
        problem = "it holds '..'"
    elif not problem and "." in parts:
        problem = "it holds '.'"
    elif not problem and "" in parts:
        problem = "it holds an empty segment"
    if problem:
        raise UnsafePathError(f"unsafe path {path!r} in signed metadata: {problem}")
    return parts


def path_under(base: Path, path: str) -> Path:
    """``base / path`` when ``path`` passes ``check_relative`` and the joined path, with
    every link followed, is still inside ``base``; UnsafePathError otherwise."""
    joined = base.joinpath(*check_relative(path))
    resolved_base = base.resolve()
    if not joined.resolve().is_relative_to(resolved_base):
        raise UnsafePathError(f"unsafe path {path!r} in signed metadata: it leads outside {base}")
    return joined


def consistent_name(target_path: str, digest: str) -> str:
    """A target's file name in a consistent snapshot, ``DIR/HASH.NAME``, relative to the
    targets folder; UnsafePathError for an unsafe path or a hash that is not
    letters and digits."""
    *directory, name = check_relative(target_path)
    if not digest or not digest.isalnum() or not digest.isascii():
        raise UnsafePathError(f"target {target_path!r} has a malformed hash {digest!r}")
    return "/".join([*directory, f"{digest}.{name}"])


def consistent_target_file(targets_dir: Path, target_path: str, digest: str) -> Path:
    """Where a target with this path and hash lives under ``targets_dir`` (consistent
    snapshot), checked as ``path_under`` checks; UnsafePathError otherwise."""
    return path_under(targets_dir, consistent_name(target_path, digest))
