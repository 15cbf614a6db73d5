"""The one file lock: the device's, the mirror's and the repository's publish lock."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from patchline.agent.device import DeviceDir
from patchline.errors import DeviceBusyError, RepositoryBusyError
from patchline.fsutil import exclusive_lock


def test_a_second_agent_on_the_same_device_is_refused_at_once(tmp_path: Path) -> None:
    device = DeviceDir(tmp_path / "device")
    with device.locked():
        started = time.monotonic()
        with pytest.raises(DeviceBusyError, match="another agent is working on"), device.locked():
            pass
        assert time.monotonic() - started < 1
    with device.locked():  # released when the block ended
        pass


def test_a_waiting_holder_gives_up_after_its_wait(tmp_path: Path) -> None:
    lock = tmp_path / "repo" / ".publish.lock"

    def busy() -> RepositoryBusyError:
        return RepositoryBusyError("busy")

    with exclusive_lock(lock, busy, mode=0o600):
        started = time.monotonic()
        with pytest.raises(RepositoryBusyError), exclusive_lock(lock, busy, wait_seconds=0.3):
            pass
        assert 0.3 <= time.monotonic() - started < 2
    assert lock.stat().st_mode & 0o777 == 0o600
