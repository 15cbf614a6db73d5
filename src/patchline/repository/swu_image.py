"""SWUpdate images (``.swu``) made from a raw image, signed with the maker's certificate.

A ``.swu`` is a cpio archive (``crc`` format) holding ``sw-description`` first, then its
CMS signature ``sw-description.sig``, then the image. ``sw-description`` names the image,
its sha256 and the device (a partition) SWUpdate's ``raw`` handler writes it to; SWUpdate
started with ``-k CERT`` checks the signature against the maker's certificate and the
image against the hash before writing a byte. The signature is made by ``openssl cms``.

For makers that have no signing certificate yet, ``write_test_certificate`` makes a
self-signed one (for tests and trials: a fleet's key belongs in the maker's own PKI).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from patchline.errors import UsageError

_SAFE_TEXT = re.compile(r"^[A-Za-z0-9._/:+-]{1,255}$")
_CPIO_MAGIC = b"070702"  # "new" ASCII format with a checksum (cpio -H crc)
_FILE_MODE = 0o100644


class SwuError(UsageError):
    """An image, a certificate or a value that cannot make a ``.swu``."""


@dataclass(frozen=True)
class SwuSpec:
    """What the ``.swu`` installs: ``image`` written raw to ``device``, as ``version``."""

    image: Path
    version: str
    device: str
    #: The name the image has inside the archive (default: its file name).
    name: str | None = None
    #: Hardware revisions it installs on (SWUpdate checks them against its ``-H`` or
    #: ``/etc/hwrevision``; Debian's build requires the list).
    hardware: tuple[str, ...] = ("1.0",)


def sw_description(spec: SwuSpec, image_sha256: str) -> bytes:
    """The libconfig ``sw-description`` of a one-image raw update.

    Raises SwuError for a version, device or name with characters it cannot carry.
    """
    name = spec.name or spec.image.name
    values = [("version", spec.version), ("device", spec.device), ("name", name)]
    values += [("hardware revision", revision) for revision in spec.hardware]
    for label, value in values:
        if not _SAFE_TEXT.match(value):
            raise SwuError(f"{label} {value!r} cannot go into sw-description")
    if not spec.hardware:
        raise SwuError("name at least one hardware revision")
    revisions = ", ".join(f'"{revision}"' for revision in spec.hardware)
    text = (
        "software =\n"
        "{\n"
        f'\tversion = "{spec.version}";\n'
        f"\thardware-compatibility: [ {revisions} ];\n"
        "\timages: (\n"
        "\t\t{\n"
        f'\t\t\tfilename = "{name}";\n'
        '\t\t\ttype = "raw";\n'
        f'\t\t\tdevice = "{spec.device}";\n'
        f'\t\t\tsha256 = "{image_sha256}";\n'
        "\t\t}\n"
        "\t);\n"
        "}\n"
    )
    return text.encode()


def cms_sign(data: bytes, key: Path, certificate: Path) -> bytes:
    """A detached CMS signature (DER) of ``data`` by ``key``, carrying ``certificate``.

    Raises SwuError when openssl refuses (a wrong key, a passphrase it cannot read).
    """
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "sw-description"
        source.write_bytes(data)
        signature = Path(tmp) / "sw-description.sig"
        result = subprocess.run(
            [
                "openssl", "cms", "-sign", "-in", str(source), "-out", str(signature),
                "-signer", str(certificate), "-inkey", str(key),
                "-outform", "DER", "-nosmimecap", "-binary",
            ],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise SwuError(
                f"openssl could not sign sw-description: {result.stderr.strip()[:500]}",
                hint="check the key matches the certificate and is not encrypted",
            )
        return signature.read_bytes()


def _cpio_entry(name: str, data: bytes, inode: int) -> bytes:
    encoded = name.encode() + b"\0"
    fields = [
        inode, _FILE_MODE, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded),
        sum(data) & 0xFFFFFFFF,
    ]  # fmt: skip
    header = _CPIO_MAGIC + b"".join(b"%08X" % value for value in fields)
    head = header + encoded
    head += b"\0" * (-len(head) % 4)
    return head + data + b"\0" * (-len(data) % 4)


def cpio_archive(members: list[tuple[str, bytes]]) -> bytes:
    """A cpio archive (``crc`` format) of ``members`` in order, with its trailer."""
    parts = [_cpio_entry(name, data, inode) for inode, (name, data) in enumerate(members, 1)]
    parts.append(_cpio_entry("TRAILER!!!", b"", 0))
    archive = b"".join(parts)
    return archive + b"\0" * (-len(archive) % 512)


def build_swu(spec: SwuSpec, out: Path, key: Path, certificate: Path) -> str:
    """Write the signed ``.swu`` of ``spec`` to ``out``; return its sha256.

    Raises SwuError for an unreadable image or a signature openssl cannot make.
    """
    try:
        image = spec.image.read_bytes()
    except OSError as exc:
        raise SwuError(f"cannot read image {spec.image}: {exc.strerror}") from None
    description = sw_description(spec, hashlib.sha256(image).hexdigest())
    signature = cms_sign(description, key, certificate)
    archive = cpio_archive(
        [
            ("sw-description", description),
            ("sw-description.sig", signature),
            (spec.name or spec.image.name, image),
        ]
    )
    out.write_bytes(archive)
    return hashlib.sha256(archive).hexdigest()


def write_test_certificate(directory: Path, common_name: str, days: int = 365) -> tuple[Path, Path]:
    """A self-signed signing certificate and its unencrypted key in ``directory``
    (``signing.crt``, ``signing.key``), fit for SWUpdate's default check (key usage
    digitalSignature, extended key usage emailProtection); returns (certificate, key).

    Raises SwuError when openssl fails.
    """
    if not re.match(r"^[A-Za-z0-9 ._-]{1,64}$", common_name):
        raise SwuError(f"common name {common_name!r} is not usable")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "signing.crt", directory / "signing.key"
    result = subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:3072", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", str(days),
            "-subj", f"/CN={common_name}",
            "-addext", "keyUsage=critical,digitalSignature",
            "-addext", "extendedKeyUsage=emailProtection",
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SwuError(f"openssl could not make a certificate: {result.stderr.strip()[:500]}")
    key.chmod(0o600)
    return cert, key
