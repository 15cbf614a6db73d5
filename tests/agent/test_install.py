"""Installing: deltas with fallback to the full image, health checks, rollback."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from tuf.api.metadata import TargetFile

from patchline.agent import Agent, DeviceDir, HealthCheck
from patchline.agent.reports import Outbox
from patchline.agent.state import load_state
from patchline.clock import SystemClock
from patchline.delta import build_delta
from patchline.errors import RolledBackError
from patchline.repository import ReleaseRequest, Repository, add_release
from patchline.wire.device_api import ReportCode, ReportStatus, Slot
from patchline.wire.release import DeltaTargetInfo, UpdateClass, delta_target_path
from tests.agent.hosts import RangeHost
from tests.conftest import image_bytes, publish

NEW_IMAGE = image_bytes("alpha/1.0")[: 48 * 1024] + image_bytes("alpha/2.0", 16 * 1024)


def publish_shared(repo: Repository) -> None:
    """Publish alpha 2.0 as an image sharing most of its bytes with alpha 1.0."""
    image = repo.layout.home.parent / "alpha-2.0.img"
    image.write_bytes(NEW_IMAGE)
    add_release(
        repo,
        ReleaseRequest(
            image=image,
            model="alpha",
            build="2.0",
            security_patch_level=date(2026, 2, 1),
            update_class=UpdateClass.SECURITY,
        ),
    )


def publish_delta(repo: Repository, source_build: str, build: str, *, corrupt: bool = False) -> str:
    """Build the delta alpha source_build -> build and sign it in alpha's role."""
    work = repo.layout.home.parent
    source = work / "delta-source.img"
    source.write_bytes(image_bytes(f"alpha/{source_build}"))
    if corrupt:  # built from another source: it will not fit the device's running image
        source.write_bytes(b"shifted" + image_bytes(f"alpha/{source_build}"))
    full = work / f"alpha-{build}.img"
    patch = work / "delta.patch"
    build_delta(source, full, patch)
    full_path = f"alpha/{build}/alpha-{build}.img"
    full_sha = hashlib.sha256(full.read_bytes()).hexdigest()
    patch_sha = hashlib.sha256(patch.read_bytes()).hexdigest()
    path = delta_target_path("alpha", build, source_build)
    stored = repo.layout.target_file(path, patch_sha)
    shutil.copyfile(patch, stored)
    info = DeltaTargetInfo(
        model="alpha",
        build=build,
        source_build=source_build,
        # a corrupt delta still claims the device's running image as its source
        source_sha256=hashlib.sha256(image_bytes(f"alpha/{source_build}")).hexdigest(),
        full_target=full_path,
        full_sha256=full_sha,
        full_length=full.stat().st_size,
    )
    with repo.transaction() as tx:
        tx.edit_model("alpha").targets[path] = TargetFile(
            patch.stat().st_size, {"sha256": patch_sha}, path, {"custom": info.to_custom()}
        )
        tx.require_signers(["alpha", "snapshot", "timestamp"])
        tx.commit()
    return path


def reports(device: DeviceDir) -> list[tuple[ReportStatus, ReportCode, bool]]:
    return [(r.status, r.code, r.delta) for _, r in Outbox(device.outbox).pending()]


def test_a_delta_that_fits_the_running_image_is_applied_from_the_active_slot(
    repo: Repository, make_device: Callable[..., DeviceDir], hosts: Callable[..., RangeHost]
) -> None:
    publish(repo, "alpha", "1.0")
    publish_shared(repo)
    delta_path = publish_delta(repo, "1.0", "2.0")
    host = hosts(repo.layout.public_dir)
    device = make_device(mirrors=[host.url])

    result = Agent(device, clock=SystemClock()).update()

    assert "as a delta" in result.message
    assert device.slot_image(Slot.B).read_bytes() == NEW_IMAGE
    served = [r.path for r in host.target_requests()]
    assert len(served) == 1
    assert served[0].endswith("delta-from-1.0.patch")
    assert delta_path.endswith("delta-from-1.0.patch")
    assert reports(device)[-1] == (ReportStatus.BOOTED_HEALTHY, ReportCode.NONE, True)


def test_a_delta_that_does_not_fit_falls_back_to_the_full_image_and_says_so(
    repo: Repository, make_device: Callable[..., DeviceDir], hosts: Callable[..., RangeHost]
) -> None:
    publish(repo, "alpha", "1.0")
    publish_shared(repo)
    publish_delta(repo, "1.0", "2.0", corrupt=True)
    host = hosts(repo.layout.public_dir)
    device = make_device(mirrors=[host.url])

    result = Agent(device, clock=SystemClock()).update()

    assert result.build == "2.0"
    assert "The delta failed" in result.message
    assert "the full image was used" in result.message
    assert device.slot_image(Slot.B).read_bytes() == NEW_IMAGE
    assert (ReportStatus.FAILED, ReportCode.SOURCE_CHANGED, True) in reports(device)
    assert reports(device)[-1] == (ReportStatus.BOOTED_HEALTHY, ReportCode.NONE, False)


def test_a_failed_health_check_rolls_back_to_the_old_slot_and_is_reported(
    repo: Repository, make_device: Callable[..., DeviceDir], hosts: Callable[..., RangeHost]
) -> None:
    publish(repo, "alpha", "2.0")
    host = hosts(repo.layout.public_dir)
    device = make_device(mirrors=[host.url], health=HealthCheck(marker="BOOT_OK"))

    with pytest.raises(RolledBackError) as caught:
        Agent(device, clock=SystemClock()).update()

    assert "did not boot healthy" in str(caught.value)
    assert "health marker 'BOOT_OK'" in str(caught.value)
    assert "went back to build 1.0" in str(caught.value)
    assert caught.value.exit_code == 15
    state = load_state(device)
    assert state.active is Slot.A
    assert state.running.build == "1.0"
    assert state.trial is None
    assert reports(device)[-1] == (ReportStatus.ROLLED_BACK, ReportCode.HEALTH_CHECK_FAILED, False)
    # the same build is not tried again
    with pytest.raises(Exception, match="failed its health check on this device before"):
        Agent(device, clock=SystemClock()).update()
    assert len(host.target_requests()) == 1


def test_a_health_command_decides_whether_the_new_build_stays(
    repo: Repository,
    make_device: Callable[..., DeviceDir],
    hosts: Callable[..., RangeHost],
    tmp_path: Path,
) -> None:
    publish(repo, "alpha", "2.0")
    host = hosts(repo.layout.public_dir)
    expected = tmp_path / "expected.img"
    expected.write_bytes(image_bytes("alpha/2.0"))
    device = make_device(
        mirrors=[host.url], health=HealthCheck(command=["cmp", "-s", str(expected)])
    )

    result = Agent(device, clock=SystemClock()).update()

    assert result.status == "installed"
    assert load_state(device).active is Slot.B


def test_a_truncated_delta_download_falls_back_to_the_full_image(
    repo: Repository, make_device: Callable[..., DeviceDir], hosts: Callable[..., RangeHost]
) -> None:
    publish(repo, "alpha", "1.0")
    publish_shared(repo)  # signs 2.0 and a delta from 1.0
    host = hosts(repo.layout.public_dir, cut_suffix=".patch")
    device = make_device(mirrors=[host.url])

    result = Agent(device, clock=SystemClock()).update()

    assert result.build == "2.0"
    assert "the full image was used" in result.message
    assert device.slot_image(Slot.B).read_bytes() == NEW_IMAGE
    assert any(r.path.endswith(".patch") for r in host.target_requests())
    assert reports(device)[-1] == (ReportStatus.BOOTED_HEALTHY, ReportCode.NONE, False)


def test_a_signed_but_corrupt_patch_falls_back_to_the_full_image(
    repo: Repository, make_device: Callable[..., DeviceDir], hosts: Callable[..., RangeHost]
) -> None:
    publish(repo, "alpha", "1.0")
    publish_shared(repo)
    state = repo.state()
    path = delta_target_path("alpha", "2.0", "1.0")
    signed = state.model("alpha").signed.targets[path]
    stored = repo.layout.target_file(path, signed.hashes["sha256"])
    garbage = bytearray(stored.read_bytes())
    garbage[len(garbage) // 2 :] = bytes(len(garbage) - len(garbage) // 2)  # zeroed tail
    sha = hashlib.sha256(garbage).hexdigest()
    repo.layout.target_file(path, sha).write_bytes(bytes(garbage))
    with repo.transaction() as tx:  # the repository signs the corrupt bytes as they are
        tx.edit_model("alpha").targets[path] = TargetFile(
            len(garbage), {"sha256": sha}, path, {"custom": dict(signed.custom)}
        )
        tx.commit()
    host = hosts(repo.layout.public_dir)
    device = make_device(mirrors=[host.url])

    result = Agent(device, clock=SystemClock()).update()

    assert result.build == "2.0"
    assert "The delta failed" in result.message
    assert device.slot_image(Slot.B).read_bytes() == NEW_IMAGE
    assert reports(device)[-1] == (ReportStatus.BOOTED_HEALTHY, ReportCode.NONE, False)
