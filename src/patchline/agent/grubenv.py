"""GRUB's environment block (``grubenv``): 1024 bytes, a header line, ``name=value``
lines, padded with ``#``; the format ``grub-editenv`` and GRUB's ``save_env`` write."""

from __future__ import annotations

from patchline.errors import InstallFailedError

SIZE = 1024
HEADER = b"# GRUB Environment Block\n"


def parse_grubenv(block: bytes) -> dict[str, str]:
    """The variables of an environment block; InstallFailedError when it is not one."""
    if not block.startswith(HEADER):
        raise InstallFailedError("the GRUB environment block has no GRUB header")
    found = {}
    for line in block[len(HEADER) :].split(b"\n"):
        if not line or line.startswith(b"#"):
            continue
        name, sep, value = line.partition(b"=")
        if sep:
            text = value.decode(errors="replace").replace("\\n", "\n").replace("\\\\", "\\")
            found[name.decode(errors="replace")] = text
    return found


def format_grubenv(variables: dict[str, str]) -> bytes:
    """An environment block holding ``variables``; InstallFailedError when they do not fit."""
    body = b"".join(
        f"{name}={value.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n')}\n".encode()
        for name, value in variables.items()
    )
    block = HEADER + body
    if len(block) > SIZE:
        raise InstallFailedError("the GRUB environment block is full")
    return block + b"#" * (SIZE - len(block))
