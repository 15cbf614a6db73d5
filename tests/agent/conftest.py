"""Agent fixtures: devices made from the test repository, and real hosts serving it."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest

from patchline.agent import DeviceConfig, DeviceDir, Limits, create_device
from patchline.repository import Repository
from tests.agent.hosts import Behaviour, RangeHost
from tests.conftest import image_bytes

FAST_LIMITS = Limits(
    deadline_seconds=20,
    min_bytes_per_second=64 * 1024,
    grace_seconds=0.5,
    connect_timeout_seconds=2,
)


@pytest.fixture
def hosts() -> Iterator[Callable[..., RangeHost]]:
    """Start RangeHosts on a directory; all stopped at the end of the test."""
    started: list[RangeHost] = []

    def start(directory: Path, **behaviour: object) -> RangeHost:
        host = RangeHost(directory, Behaviour(**behaviour))  # type: ignore[arg-type]
        started.append(host)
        return host

    yield start
    for host in started:
        host.stop()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def snapshot_tree(repo: Repository, where: Path) -> Path:
    """A copy of the repository's public tree as it is now (a mirror, an SD card)."""
    shutil.copytree(repo.layout.public_dir, where)
    return where


@pytest.fixture
def make_device(repo: Repository, tmp_path: Path) -> Callable[..., DeviceDir]:
    """A device of model alpha running a factory build from slot A."""

    def make(
        name: str = "dev",
        build: str = "1.0",
        spl: str = "2026-01-01",
        **config: object,
    ) -> DeviceDir:
        factory = tmp_path / f"factory-{name}.img"
        factory.write_bytes(image_bytes(f"alpha/{build}"))
        values: dict[str, object] = {"model": "alpha", "limits": FAST_LIMITS}
        values.update(config)
        return create_device(
            tmp_path / name,
            DeviceConfig(**values),  # type: ignore[arg-type]
            shipped_root=repo.layout.metadata_file("root", 1).read_bytes(),
            image=factory,
            build=build,
            security_patch_level=date.fromisoformat(spl),
        )

    return make
