"""A publish that runs out of space (a real file-size limit, RLIMIT_FSIZE, in the
publishing process: every write past it fails with EFBIG as on a full disk) fails with
a clear error, and the repository it was publishing to is still served whole: a device
refreshes and downloads the previous state, and the next publish succeeds."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from patchline.repository import Repository
from patchline.wire.release import model_lookup_path
from tests.agent import conftest as agent_fixtures
from tests.agent.hosts import RangeHost
from tests.conftest import image_bytes, publish, tree_digest
from tests.e2e.test_tuf_client import device, download

hosts = agent_fixtures.hosts


def limited_to(size: int) -> Callable[[], None]:
    """For a child process: files may not grow past ``size`` bytes; a write past it
    fails (EFBIG) instead of killing the process (SIGXFSZ ignored)."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return apply


def publish_limited(
    repo: Repository, image: Path, build: str, limit: int
) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "patchline"
    return subprocess.run(
        [
            str(exe),
            "--home",
            str(repo.layout.home),
            "release",
            "add",
            str(image),
            "--model",
            "alpha",
            "--build",
            build,
            "--security-patch-level",
            "2026-03-01",
            "--class",
            "security",
        ],
        capture_output=True,
        text=True,
        preexec_fn=limited_to(limit),
        timeout=120,
    )


@pytest.mark.parametrize("limit", [500, 1_200, 1_600, 2_000])
def test_a_publish_that_runs_out_of_space_leaves_the_previous_state_served_whole(
    repo: Repository, tmp_path: Path, hosts: Callable[..., RangeHost], limit: int
) -> None:
    publish(repo, "alpha", "1.0")
    before = tree_digest(repo.layout.public_dir)
    image = tmp_path / "alpha-2.0.img"
    image.write_bytes(image_bytes("alpha/2.0", 1_024))

    failed = publish_limited(repo, image, "2.0", limit)

    assert failed.returncode != 0, failed.stdout
    said = failed.stdout + failed.stderr
    assert "Traceback" not in said, said
    assert "File too large" in said
    if limit >= 1_200:  # the image fits: the metadata is what cannot be written
        assert "the repository still serves its previous state" in said
    served = {k: v for k, v in tree_digest(repo.layout.public_dir).items() if k in before}
    assert served == before  # nothing already served was changed
    host = hosts(repo.layout.public_dir)
    updater = device(tmp_path, "d1", host, repo.layout.metadata_file("root", 1).read_bytes())
    assert download(updater, "alpha/1.0/alpha-1.0.img") == image_bytes("alpha/1.0")
    assert updater.get_targetinfo("alpha/2.0/alpha-2.0.img") is None
    assert updater.get_targetinfo(model_lookup_path("alpha")) is None

    publish(repo, "alpha", "2.0")
    again = device(tmp_path, "d2", host, repo.layout.metadata_file("root", 1).read_bytes())
    assert download(again, "alpha/2.0/alpha-2.0.img") == image_bytes("alpha/2.0")
