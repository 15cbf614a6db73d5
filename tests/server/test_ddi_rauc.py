"""A RAUC bundle made by Debian's ``rauc bundle``, published as a release's image and
downloaded by a controller through the DDI API in byte ranges, as RAUC's hawkBit client
resumes: the hashes the deployment names hold, and ``rauc info`` verifies the bundle's
signature with the maker's certificate."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.server.ddi_helpers import ALLOW_ALL, DdiServer, ddi_server

__all__ = ["ddi_server"]

TOKEN = "rauc-controller-token-0123456789"

pytestmark = [
    pytest.mark.skipif(
        shutil.which("rauc") is None or shutil.which("mksquashfs") is None,
        reason="Debian's rauc and squashfs-tools are not installed",
    ),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


def make_bundle(server: DdiServer, work: Path) -> Path:
    content = work / "content"
    content.mkdir(parents=True)
    # Bytes that do not compress: RAUC wants a squashfs larger than 4 KiB.
    noise = b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(8192))
    (content / "rootfs.img").write_bytes(noise)
    (content / "manifest.raucm").write_text(
        "[update]\ncompatible=patchline-alpha\nversion=1.1\n\n"
        "[bundle]\nformat=verity\n\n[image.rootfs]\nfilename=rootfs.img\n"
    )
    bundle = work / "alpha-1.1.raucb"
    subprocess.run(
        ["rauc", "bundle", "--cert", str(server.cert), "--key", str(server.key),
         str(content), str(bundle)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return bundle


def test_rauc_info_accepts_a_bundle_published_and_downloaded_through_ddi(
    ddi_server: DdiServer, tmp_path: Path
) -> None:
    server = ddi_server
    assert server.api().post("/api/policies", json=ALLOW_ALL).status_code == 201
    server.publish_file("1.1", make_bundle(server, tmp_path / "bundle"))
    server.enroll("rauc-1", TOKEN, "SN-R1")
    controller = server.controller("rauc-1", TOKEN)
    href = controller.get("").json()["_links"]["deploymentBase"]["href"]
    [chunk] = controller.get(href.split("/rauc-1", 1)[1]).json()["deployment"]["chunks"]
    [artifact] = chunk["artifacts"]
    assert artifact["filename"] == "alpha-1.1.raucb"
    url = artifact["_links"]["download"]["href"]
    auth = {"Authorization": f"TargetToken {TOKEN}"}
    size = artifact["size"]
    first = httpx.get(url, headers={**auth, "Range": f"bytes=0-{size // 2 - 1}"})
    rest = httpx.get(url, headers={**auth, "Range": f"bytes={size // 2}-"})
    assert (first.status_code, rest.status_code) == (206, 206)
    data = first.content + rest.content
    assert len(data) == size
    assert hashlib.sha256(data).hexdigest() == artifact["hashes"]["sha256"]
    assert hashlib.sha1(data).hexdigest() == artifact["hashes"]["sha1"]  # noqa: S324
    assert hashlib.md5(data).hexdigest() == artifact["hashes"]["md5"]  # noqa: S324
    downloaded = tmp_path / "device" / "download.raucb"
    downloaded.parent.mkdir()
    downloaded.write_bytes(data)
    info = subprocess.run(
        ["rauc", "info", "--keyring", str(server.cert), str(downloaded)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert info.returncode == 0, info.stderr
    assert "Verified inline signature" in info.stderr + info.stdout
    assert "'1.1'" in info.stdout
