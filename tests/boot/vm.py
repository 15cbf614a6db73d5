"""A virtual machine that boots for real: qemu-system-x86_64 (software emulation) with
OVMF, Debian's kernel, and a GPT disk image built without loop devices.

The disk: an ESP (FAT, ``mkfs.vfat -C`` and mtools) and two slot partitions
``patchline-a``/``patchline-b``. A slot image is an ext4 file system (``mkfs.ext4 -d``)
holding /boot/vmlinuz and /boot/initrd.img; the initrd is a busybox system whose /init
prints the booted slot's kernel command line and a health line on the serial console
and powers off, or panics (a broken build; the kernel runs with ``panic=1`` and reboots,
so the bootloader tries again).
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
SYSTEMD_BOOT = Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
BUSYBOX = Path("/bin/busybox")
TOOLS = ("qemu-system-x86_64", "sfdisk", "mkfs.vfat", "mcopy", "mkfs.ext4", "debugfs")
#: One boot under software emulation takes 10-60 s of a shared, busy core; a run may hold
#: several boots (a broken build tried, then the fallback).
BOOT_TIMEOUT = 600.0
KERNEL_OPTIONS = "console=ttyS0 panic=1 quiet"
MiB = 1 << 20


def cache_dir() -> Path:
    """Where the kernel is kept between runs (PATCHLINE_VM_CACHE, ~/.cache/patchline-vm)."""
    return Path(os.environ.get("PATCHLINE_VM_CACHE", Path.home() / ".cache" / "patchline-vm"))


GRUB_MODULES = Path("/usr/lib/grub/x86_64-efi")


def missing_tools(grub: bool = False) -> list[str]:
    """The programs and firmware files the VM tests need that this machine lacks."""
    tools = (*TOOLS, "grub-mkimage") if grub else TOOLS
    missing = [tool for tool in tools if shutil.which(tool) is None]
    files = (OVMF_CODE, OVMF_VARS, SYSTEMD_BOOT, BUSYBOX) + ((GRUB_MODULES,) if grub else ())
    missing += [str(p) for p in files if not p.exists()]
    return missing


def require_vm_tools(*, grub: bool = False) -> None:
    """Skip (or fail, with PATCHLINE_REQUIRE_VM=1 as in CI) when the VM cannot run here."""
    missing = missing_tools(grub)
    if missing:
        message = f"the VM tests need {', '.join(missing)} (.ci/packages.txt)"
        if os.environ.get("PATCHLINE_REQUIRE_VM") == "1":
            pytest.fail(message)
        pytest.skip(message)


def kernel() -> Path:
    """Debian's kernel, fetched into the cache by scripts/fetch_vm_kernel.sh when missing."""
    cached = cache_dir() / "vmlinuz"
    if not cached.is_file():
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "fetch_vm_kernel.sh")], check=True, timeout=600
        )
    return cached


GOOD_INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
echo "patchline-vm: started build {build}"
{pause}echo "patchline-vm: cmdline $(cat /proc/cmdline)"
echo "patchline-vm: health ok"
poweroff -f
"""

BROKEN_INIT = """#!/bin/busybox sh
echo "patchline-vm: started build {build}; it panics"
exit 1
"""


def initramfs(path: Path, init: str) -> Path:
    """A gzip'd newc cpio archive: busybox and ``init``."""
    entries: list[tuple[str, int, bytes, tuple[int, int]]] = [
        ("bin", 0o40755, b"", (0, 0)),
        ("dev", 0o40755, b"", (0, 0)),
        ("proc", 0o40755, b"", (0, 0)),
        ("dev/console", 0o20600, b"", (5, 1)),
        ("bin/busybox", 0o100755, BUSYBOX.read_bytes(), (0, 0)),
        ("init", 0o100755, init.encode(), (0, 0)),
        ("TRAILER!!!", 0, b"", (0, 0)),
    ]
    out = bytearray()
    for number, (name, mode, data, (major, minor)) in enumerate(entries, start=1):
        raw_name = name.encode() + b"\0"
        fields = (number, mode, 0, 0, 1, 0, len(data), 0, 0, major, minor, len(raw_name), 0)
        out += b"070701" + "".join(f"{v:08x}" for v in fields).encode() + raw_name
        out += b"\0" * (-len(out) % 4)
        out += data
        out += b"\0" * (-len(out) % 4)
    path.write_bytes(gzip.compress(bytes(out), 6))
    return path


def slot_image(path: Path, build: str, *, broken: bool = False, pause: float = 0.0) -> Path:
    """An ext4 slot image of ``build``: /boot/vmlinuz, /boot/initrd.img, /etc/build."""
    tree = path.with_suffix(".tree")
    (tree / "boot").mkdir(parents=True)
    (tree / "etc").mkdir()
    (tree / "etc" / "build").write_text(build + "\n")
    shutil.copyfile(kernel(), tree / "boot" / "vmlinuz")
    init = (BROKEN_INIT if broken else GOOD_INIT).format(
        build=build, pause=f"sleep {pause}\n" if pause else ""
    )
    initramfs(tree / "boot" / "initrd.img", init)
    _run("mkfs.ext4", "-q", "-F", "-L", "patchline", "-d", str(tree), str(path), "24M")
    shutil.rmtree(tree)
    return path


@dataclass(frozen=True)
class Disk:
    """A disk image and its partitions' byte offsets."""

    path: Path
    esp_offset: int


def build_disk(path: Path, esp_files: dict[str, bytes | Path]) -> Disk:
    """A GPT disk image: ESP (64 MiB FAT holding ``esp_files``), patchline-a and
    patchline-b (32 MiB each); the slots are empty."""
    with path.open("wb") as handle:
        handle.truncate(132 * MiB)
    layout = (
        "label: gpt\n"
        "size=64MiB, type=U, name=ESP\n"
        "size=32MiB, type=L, name=patchline-a\n"
        "size=32MiB, type=L, name=patchline-b\n"
    )
    _run("sfdisk", "-q", str(path), stdin=layout.encode())
    esp = path.with_suffix(".esp")
    esp.unlink(missing_ok=True)
    _run("mkfs.vfat", "-C", "-n", "ESP", str(esp), str(64 * 1024))
    for inside, content in esp_files.items():
        folders = inside.strip("/").split("/")[:-1]
        for depth in range(1, len(folders) + 1):
            _mtools(esp, "mmd", "-D", "s", "::/" + "/".join(folders[:depth]), ok_exists=True)
        if isinstance(content, Path):
            _mtools(esp, "mcopy", "-o", str(content), f"::{inside}")
        else:
            _mtools(esp, "mcopy", "-o", "-", f"::{inside}", stdin=content)
    offset = 1 * MiB  # sfdisk's default first partition start (sector 2048)
    with esp.open("rb") as source, path.open("r+b") as target:
        target.seek(offset)
        shutil.copyfileobj(source, target)
    esp.unlink()
    return Disk(path, offset)


@dataclass(frozen=True)
class Run:
    """One run of the VM (maybe several boots): its serial console and how it ended."""

    serial: str
    seconds: float
    powered_off: bool

    def cmdlines(self) -> list[str]:
        """The kernel command line of every boot that reached its health line."""
        prefix = "patchline-vm: cmdline "
        return [line[len(prefix) :] for line in self.serial.splitlines() if line.startswith(prefix)]

    def started(self) -> list[str]:
        """The "started" line of every boot whose init ran."""
        return [line for line in self.serial.splitlines() if "patchline-vm: started" in line]


class Machine:
    """A VM with its own UEFI variables, booting ``disk``."""

    def __init__(self, disk: Path, workdir: Path, *, memory_mb: int = 256) -> None:
        self.disk = disk
        self.workdir = workdir
        self.memory_mb = memory_mb
        self.vars = workdir / "OVMF_VARS.fd"
        shutil.copyfile(OVMF_VARS, self.vars)
        self.runs = 0

    def _command(self, serial: Path) -> list[str]:
        return [
            "qemu-system-x86_64",
            "-machine", "q35",
            "-accel", "tcg",
            "-m", str(self.memory_mb),
            "-smp", "1",
            "-nodefaults",
            "-display", "none",
            "-serial", f"file:{serial}",
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
            "-drive", f"if=pflash,format=raw,unit=1,file={self.vars}",
            "-drive", f"file={self.disk},format=raw,if=virtio,cache=writethrough",
        ]  # fmt: skip

    def boot(self, *, timeout: float = BOOT_TIMEOUT, kill_at: str | None = None) -> Run:
        """Power on and wait until the VM powers itself off (or ``timeout``: a failure).

        ``kill_at``: cut the power (SIGKILL) as soon as the serial console shows this text.
        """
        self.runs += 1
        serial = self.workdir / f"serial-{self.runs}.log"
        started = time.monotonic()
        process = subprocess.Popen(
            self._command(serial), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            while process.poll() is None:
                if time.monotonic() - started > timeout:
                    raise AssertionError(
                        f"the VM did not power off within {timeout:.0f} s; serial console:\n"
                        + _read(serial)[-3000:]
                    )
                if kill_at is not None and kill_at in _read(serial):
                    process.kill()
                    process.wait()
                    return Run(_read(serial), time.monotonic() - started, powered_off=False)
                time.sleep(0.2)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if process.returncode != 0:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise AssertionError(f"qemu exited with {process.returncode}: {stderr[-2000:]}")
        return Run(_read(serial), time.monotonic() - started, powered_off=True)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return ""


def _mtools(image: Path, *args: str, stdin: bytes | None = None, ok_exists: bool = False) -> None:
    done = subprocess.run(
        [args[0], "-i", str(image), *args[1:]],
        input=stdin,
        capture_output=True,
        env={**os.environ, "MTOOLS_SKIP_CHECK": "1"},
        check=False,
    )
    if done.returncode != 0 and not ok_exists:
        raise AssertionError(f"{args[0]} failed: {done.stderr.decode()}")


def _run(*args: str, stdin: bytes | None = None) -> None:
    done = subprocess.run(list(args), input=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{args[0]} failed: {done.stderr.decode(errors='replace')}")
