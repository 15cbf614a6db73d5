"""kill -9 of a real agent process: downloads resume, installs never brick the device."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import msgspec

from patchline.agent import Agent, DeviceDir, HealthCheck
from patchline.agent.reports import Outbox
from patchline.agent.state import load_state
from patchline.clock import SystemClock
from patchline.repository import ReleaseRequest, Repository, add_release
from patchline.wire.device_api import ReportCode, ReportStatus, Slot
from patchline.wire.release import UpdateClass
from tests.agent import conftest as agent_fixtures
from tests.agent.hosts import RangeHost
from tests.conftest import image_bytes, publish

BIG = 4 * 1024 * 1024
hosts = agent_fixtures.hosts
make_device = agent_fixtures.make_device


def start_agent(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "patchline.cli.main", "agent", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def wait_for(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def kill9(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL


def with_mirrors(device: DeviceDir, mirrors: list[str]) -> None:
    device.save_config(msgspec.structs.replace(device.load_config(), mirrors=mirrors))


def test_kill_9_mid_download_resumes_without_downloading_the_same_bytes_again(
    repo: Repository,
    make_device: Callable[..., DeviceDir],
    hosts: Callable[..., RangeHost],
) -> None:
    big = repo.layout.home.parent / "alpha-2.0.img"
    big.write_bytes(image_bytes("alpha/2.0", BIG))
    add_release(
        repo,
        ReleaseRequest(big, "alpha", "2.0", date(2026, 2, 1), UpdateClass.SECURITY),
    )
    slow = hosts(repo.layout.public_dir, bytes_per_second=1024 * 1024)
    fast = hosts(repo.layout.public_dir)
    device = make_device(mirrors=[slow.url])
    staging = device.staging_file(Slot.B)

    agent = start_agent("update", str(device.path))
    wait_for(lambda: staging.exists() and staging.stat().st_size >= 1024 * 1024)
    kill9(agent)
    kept = staging.stat().st_size
    assert 0 < kept < BIG
    assert load_state(device).active is Slot.A

    with_mirrors(device, [fast.url])
    result = Agent(device, clock=SystemClock()).update()

    assert result.build == "2.0"
    assert device.slot_image(Slot.B).read_bytes() == big.read_bytes()
    (resumed,) = fast.target_requests()
    assert resumed.range == f"bytes={kept}-"
    assert resumed.body_bytes == BIG - kept


def test_kill_9_before_the_new_build_is_committed_still_boots_the_old_slot(
    repo: Repository,
    make_device: Callable[..., DeviceDir],
    hosts: Callable[..., RangeHost],
    tmp_path: Path,
) -> None:
    publish(repo, "alpha", "2.0")
    host = hosts(repo.layout.public_dir)
    booting = tmp_path / "booting"
    device = make_device(
        mirrors=[host.url],
        health=HealthCheck(command=["sh", "-c", f"touch {booting}; sleep 60", "health"]),
    )

    agent = start_agent("update", str(device.path))
    wait_for(booting.exists)  # the new slot is written and its first boot is under way
    kill9(agent)

    boot = subprocess.run(
        [sys.executable, "-m", "patchline.cli.main", "agent", "boot", str(device.path)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert boot.returncode == 0, boot.stderr
    assert "build 2.0 failed" in boot.stdout
    assert "back on build 1.0 in slot a" in boot.stdout
    state = load_state(device)
    assert state.active is Slot.A
    assert state.trial is None
    assert device.slot_image(Slot.A).read_bytes() == image_bytes("alpha/1.0")
    last = Outbox(device.outbox).pending()[-1][1]
    assert last.status is ReportStatus.ROLLED_BACK
    assert last.code is ReportCode.BOOT_FAILED
    assert last.build == "2.0"
