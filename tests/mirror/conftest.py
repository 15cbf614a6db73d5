"""Mirror fixtures: real HTTP hosts for sources and mirrors, devices that read a mirror,
and a fingerprint of what a mirror serves."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest

from patchline.agent import Agent, DeviceConfig, UpdateResult, create_device
from patchline.clock import SystemClock
from patchline.demo.static_host import StaticHost
from patchline.repository import Repository
from tests.agent.conftest import FAST_LIMITS
from tests.agent.hosts import Behaviour, RangeHost
from tests.conftest import image_bytes


@pytest.fixture
def hosts() -> Iterator[Callable[..., RangeHost]]:
    """Start counting RangeHosts on a directory; all stopped at the end of the test."""
    started: list[RangeHost] = []

    def start(directory: Path, **behaviour: object) -> RangeHost:
        host = RangeHost(directory, Behaviour(**behaviour))  # type: ignore[arg-type]
        started.append(host)
        return host

    yield start
    for host in started:
        host.stop()


@pytest.fixture
def static_hosts() -> Iterator[Callable[[Path], StaticHost]]:
    """Start plain static hosts (what nginx would be); all stopped at the end."""
    started: list[StaticHost] = []

    def start(directory: Path) -> StaticHost:
        host = StaticHost(directory).start()
        started.append(host)
        return host

    yield start
    for host in started:
        host.stop()


@pytest.fixture
def root_v1(repo: Repository) -> bytes:
    """The root devices ship with, which the operator hands the mirror on its first sync."""
    return repo.layout.metadata_file("root", 1).read_bytes()


def served(dest: Path) -> dict[str, str]:
    """Every file a host would serve from ``dest`` (``.mirror/`` aside), with its sha256."""
    return {
        str(p.relative_to(dest)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(dest.rglob("*"))
        if p.is_file() and ".mirror" not in p.relative_to(dest).parts
    }


def source_files(repo: Repository) -> dict[str, str]:
    """Every file of the repository's public tree, with its sha256."""
    return served(repo.layout.public_dir)


def update_device_from(
    repo: Repository, where: Path, mirror_url: str, build: str = "1.0"
) -> UpdateResult:
    """A model-alpha device that ships root v1 and runs ``build``, updated from one mirror."""
    where.mkdir(parents=True, exist_ok=True)
    factory = where / f"factory-{build}.img"
    factory.write_bytes(image_bytes(f"alpha/{build}"))
    device = create_device(
        where / "phone",
        DeviceConfig(model="alpha", mirrors=[mirror_url], limits=FAST_LIMITS),
        shipped_root=repo.layout.metadata_file("root", 1).read_bytes(),
        image=factory,
        build=build,
        security_patch_level=date(2026, 1, 1),
    )
    return Agent(device, clock=SystemClock()).update()
