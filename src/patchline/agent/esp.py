"""The EFI system partition, reached as a mounted directory (on a device) or as a FAT
partition inside a disk image through mtools (servicing an image, and the tests).

Paths are absolute ESP paths with forward slashes: ``/loader/entries/x.conf``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Protocol

from patchline.errors import InstallFailedError
from patchline.fsutil import fsync_dir


class Esp(Protocol):
    """The few file operations the bootloader back ends need on the ESP."""

    def list(self, folder: str) -> list[str]:
        """The names of the files in ``folder`` (empty when it does not exist)."""
        ...

    def read(self, path: str) -> bytes:
        """The content of ``path``; FileNotFoundError when absent."""
        ...

    def write(self, path: str, data: bytes) -> None:
        """Create or replace ``path`` (parent folders made as needed), durably."""
        ...

    def copy_in(self, source: Path, path: str) -> None:
        """Copy the local file ``source`` to ``path``, durably."""
        ...

    def rename(self, path: str, new_name: str) -> None:
        """Rename ``path`` to ``new_name`` in the same folder, durably."""
        ...

    def remove(self, path: str) -> None:
        """Delete ``path``; nothing when it is absent."""
        ...


class MountedEsp:
    """The ESP mounted at ``root`` (e.g. /boot/efi)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _local(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def list(self, folder: str) -> list[str]:
        """The names of the files in ``folder`` (empty when it does not exist)."""
        local = self._local(folder)
        return sorted(p.name for p in local.iterdir() if p.is_file()) if local.is_dir() else []

    def read(self, path: str) -> bytes:
        """The content of ``path``; FileNotFoundError when absent."""
        return self._local(path).read_bytes()

    def write(self, path: str, data: bytes) -> None:
        """Create or replace ``path`` atomically and durably (a temporary file renamed
        over it; no chmod, which FAT refuses)."""
        local = self._local(path)
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.tmp")
        try:
            with tmp.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, local)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise InstallFailedError(f"cannot write {local}: {exc.strerror}") from None
        fsync_dir(local.parent)

    def copy_in(self, source: Path, path: str) -> None:
        """Copy ``source`` to ``path`` atomically and durably."""
        self.write(path, source.read_bytes())

    def rename(self, path: str, new_name: str) -> None:
        """Rename ``path`` in place, then sync its folder."""
        local = self._local(path)
        os.replace(local, local.with_name(new_name))
        fsync_dir(local.parent)

    def remove(self, path: str) -> None:
        """Delete ``path`` and sync its folder; nothing when absent."""
        local = self._local(path)
        local.unlink(missing_ok=True)
        if local.parent.is_dir():
            fsync_dir(local.parent)


class ImageEsp:
    """A FAT partition at byte ``offset`` of the disk image ``image``, through mtools."""

    def __init__(self, image: Path, offset: int) -> None:
        self.image = image
        self.offset = offset

    def _run(self, *args: str) -> bytes:
        env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
        try:
            done = subprocess.run(
                [args[0], "-i", f"{self.image}@@{self.offset}", *args[1:]],
                capture_output=True,
                env=env,
                check=False,
                timeout=120,
            )
        except OSError as exc:
            raise InstallFailedError(
                f"cannot run {args[0]}: {exc.strerror}", hint="install Debian's mtools"
            ) from None
        if done.returncode != 0:
            message = done.stderr.decode(errors="replace").strip()
            if "not found" in message.lower() or "no such file" in message.lower():
                raise FileNotFoundError(message)
            raise InstallFailedError(f"{args[0]} failed on the ESP of {self.image}: {message}")
        return done.stdout

    def _sync(self) -> None:
        fd = os.open(self.image, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def list(self, folder: str) -> list[str]:
        """The names of the files in ``folder`` (empty when it does not exist)."""
        try:
            out = self._run("mdir", "-b", f"::{folder}")
        except FileNotFoundError:
            return []
        names = []
        for line in out.decode(errors="replace").splitlines():
            name = line.strip().rstrip("/").rsplit("/", 1)[-1]
            if name and not line.strip().endswith("/"):
                names.append(name)
        return sorted(names)

    def read(self, path: str) -> bytes:
        """The content of ``path``; FileNotFoundError when absent."""
        return self._run("mcopy", "-n", f"::{path}", "-")

    def write(self, path: str, data: bytes) -> None:
        """Create or replace ``path``, then sync the image."""
        folder = path.rsplit("/", 1)[0]
        self._makedirs(folder)
        env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
        done = subprocess.run(
            ["mcopy", "-o", "-i", f"{self.image}@@{self.offset}", "-", f"::{path}"],
            input=data,
            capture_output=True,
            env=env,
            check=False,
            timeout=120,
        )
        if done.returncode != 0:
            raise InstallFailedError(
                f"mcopy failed on the ESP of {self.image}: {done.stderr.decode().strip()}"
            )
        self._sync()

    def copy_in(self, source: Path, path: str) -> None:
        """Copy ``source`` to ``path``, then sync the image."""
        self._makedirs(path.rsplit("/", 1)[0])
        self._run("mcopy", "-o", str(source), f"::{path}")
        self._sync()

    def rename(self, path: str, new_name: str) -> None:
        """Rename ``path`` in its folder, then sync the image."""
        self._run("mren", f"::{path}", new_name)
        self._sync()

    def remove(self, path: str) -> None:
        """Delete ``path``; nothing when absent."""
        try:
            self._run("mdel", f"::{path}")
        except FileNotFoundError:
            return
        self._sync()

    def _makedirs(self, folder: str) -> None:
        parts = [p for p in folder.split("/") if p]
        for depth in range(1, len(parts) + 1):
            here = "/" + "/".join(parts[:depth])
            try:
                self._run("mdir", "-b", f"::{here}")
            except FileNotFoundError:
                self._run("mmd", f"::{here}")
