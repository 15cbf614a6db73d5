"""A signed offline bundle installs with no network for months, and nothing else does."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from patchline.agent import Agent, DeviceDir
from patchline.agent.device_key import load_device_key
from patchline.agent.receipts import ReceiptBox
from patchline.agent.state import load_state
from patchline.clock import FixedClock
from patchline.errors import NoUpdateSourceError, UpdateRefusedError
from patchline.repository import Repository
from patchline.repository.bundles import export_bundle
from patchline.wire.device_api import Slot
from patchline.wire.receipt import public_key_bytes, signed_by
from patchline.wire.release import Eligibility
from tests.conftest import START, image_bytes, publish


def later(days: int) -> FixedClock:
    return FixedClock(START + timedelta(days=days))


def test_a_bundle_installs_with_no_network_after_the_online_timestamp_expired(
    offline_repo: Repository, make_device: Callable[..., DeviceDir], tmp_path: Path
) -> None:
    publish(offline_repo, "alpha", "1.1", spl="2026-02-01")
    card = tmp_path / "card"
    exported = export_bundle(offline_repo, "alpha", card)
    timestamp = offline_repo.state().timestamp.signed
    device = make_device(bundles=[str(card)])  # no server, no mirror: no network at all
    clock = later(10)
    assert timestamp.is_expired(clock.now())

    result = Agent(device, clock=clock).update()

    assert result.status == "installed"
    assert result.build == "1.1"
    assert exported.expires - START >= timedelta(days=179)
    state = load_state(device)
    assert state.active is Slot.B
    assert state.running.build == "1.1"
    assert device.slot_image(Slot.B).read_bytes() == image_bytes("alpha/1.1")
    assert Agent(device, clock=clock).update().status == "up-to-date"


def test_an_expired_offline_role_is_refused_and_nothing_is_installed(
    offline_repo: Repository, make_device: Callable[..., DeviceDir], tmp_path: Path
) -> None:
    publish(offline_repo, "alpha", "1.1")
    card = tmp_path / "card"
    export_bundle(offline_repo, "alpha", card)
    device = make_device(bundles=[str(card)])

    with pytest.raises(NoUpdateSourceError) as refused:
        Agent(device, clock=later(181)).update()

    assert "offline snapshot expired" in refused.value.message
    assert load_state(device).running.build == "1.0"


def test_a_bundle_for_another_model_is_refused(
    offline_repo: Repository, make_device: Callable[..., DeviceDir], tmp_path: Path
) -> None:
    publish(offline_repo, "beta", "1.1")
    card = tmp_path / "card"
    export_bundle(offline_repo, "beta", card)
    device = make_device(bundles=[str(card)])

    with pytest.raises(UpdateRefusedError) as refused:
        Agent(device, clock=later(1)).update()

    assert "the bundle is for model beta, not alpha" in refused.value.message
    assert load_state(device).running.build == "1.0"


def test_an_older_build_or_lower_patch_level_is_never_installed(
    offline_repo: Repository, make_device: Callable[..., DeviceDir], tmp_path: Path
) -> None:
    publish(offline_repo, "alpha", "1.1", spl="2026-02-01")
    publish(offline_repo, "alpha", "1.2", spl="2026-03-01")
    old_card = tmp_path / "old"
    export_bundle(offline_repo, "alpha", old_card, build="1.1")
    device = make_device(build="1.2", spl="2026-03-01", bundles=[str(old_card)])

    with pytest.raises(UpdateRefusedError) as refused:
        Agent(device, clock=later(1)).update()

    assert "older than the running 1.2" in refused.value.message
    assert load_state(device).running.build == "1.2"


def test_the_signed_eligibility_travels_in_the_bundle_and_is_enforced(
    offline_repo: Repository, make_device: Callable[..., DeviceDir], tmp_path: Path
) -> None:
    publish(offline_repo, "alpha", "1.1", eligibility=Eligibility(regions_excluded=("KP",)))
    card = tmp_path / "card"
    export_bundle(offline_repo, "alpha", card)
    device = make_device(region="KP", bundles=[str(card)])

    with pytest.raises(UpdateRefusedError) as refused:
        Agent(device, clock=later(1)).update()

    assert "KP" in refused.value.message
    assert load_state(device).running.build == "1.0"


def _changed_file(card: Path, which: str) -> Path:
    metadata = card / "metadata"
    if which == "image":
        return next((card / "targets").rglob("*.img"))
    if which in ("targets", "alpha", "root"):
        return sorted(metadata.glob(f"*.{which}.json"))[-1]
    return metadata / which


@pytest.mark.parametrize(
    "which",
    ["offline-snapshot.json", "offline-targets.json", "targets", "alpha", "root", "image"],
)
def test_one_changed_byte_anywhere_is_refused_and_the_agent_moves_on(
    offline_repo: Repository,
    make_device: Callable[..., DeviceDir],
    tmp_path: Path,
    which: str,
) -> None:
    publish(offline_repo, "alpha", "1.1")
    tampered, good = tmp_path / "tampered", tmp_path / "good"
    export_bundle(offline_repo, "alpha", tampered)
    export_bundle(offline_repo, "alpha", good)
    victim = _changed_file(tampered, which)
    data = bytearray(victim.read_bytes())
    # Change one byte inside a value, keeping the JSON well formed: a digit or a letter.
    index = next(i for i in range(len(data) // 2, len(data)) if chr(data[i]).isalnum())
    data[index] = ord("0") if data[index] != ord("0") else ord("1")
    victim.write_bytes(bytes(data))
    device = make_device(bundles=[str(tampered)])

    with pytest.raises((NoUpdateSourceError, UpdateRefusedError)) as refused:
        Agent(device, clock=later(1)).update()
    assert f"SD card {tampered}" in refused.value.message
    assert load_state(device).running.build == "1.0"

    both = make_device("both", bundles=[str(tampered), str(good)])
    result = Agent(both, clock=later(1)).update()
    assert result.build == "1.1"
    assert result.source == f"SD card {good}"
    assert any(a.source == f"SD card {tampered}" for a in result.attempts)


def test_a_bundle_carries_deltas_when_asked_and_the_device_uses_one(
    offline_repo: Repository, make_device: Callable[..., DeviceDir], tmp_path: Path
) -> None:
    publish(offline_repo, "alpha", "1.0")
    image = tmp_path / "new.img"
    base = bytearray(image_bytes("alpha/1.0"))
    base[100:200] = b"x" * 100
    image.write_bytes(bytes(base))
    from datetime import date

    from patchline.repository import ReleaseRequest, add_release
    from patchline.wire.release import UpdateClass

    add_release(
        offline_repo,
        ReleaseRequest(image, "alpha", "1.1", date(2026, 2, 1), UpdateClass.SECURITY),
    )
    card = tmp_path / "card"
    exported = export_bundle(offline_repo, "alpha", card, with_deltas=True)
    assert any("delta" in path or path.endswith(".patch") for path in exported.targets[1:])
    device = make_device(bundles=[str(card)])

    result = Agent(device, clock=later(3)).update()

    assert result.build == "1.1"
    assert "as a delta" in result.message
    assert device.slot_image(Slot.B).read_bytes() == bytes(base)


def test_an_unenrolled_device_keeps_no_receipt_and_an_enrolled_one_keeps_it_signed(
    offline_repo: Repository, make_device: Callable[..., DeviceDir], tmp_path: Path
) -> None:
    publish(offline_repo, "alpha", "1.1")
    card = tmp_path / "card"
    export_bundle(offline_repo, "alpha", card)
    lone = make_device("lone", bundles=[str(card)])
    enrolled = make_device("enrolled", bundles=[str(card)], credential="abc123.s3cret")

    Agent(lone, clock=later(1)).update()
    Agent(enrolled, clock=later(1)).update()

    assert ReceiptBox(lone.path / "receipts").pending() == []
    kept = ReceiptBox(enrolled.path / "receipts").pending()
    assert len(kept) == 1
    receipt = kept[0][1].receipt
    assert (receipt.device_id, receipt.build, receipt.from_build) == ("abc123", "1.1", "1.0")
    assert os.path.getsize(kept[0][0]) > 0
    key = load_device_key(enrolled)  # made for the receipt: the device enrolled without one
    assert key is not None
    assert signed_by(kept[0][1], public_key_bytes(key))
    assert load_device_key(lone) is None


def test_a_bundle_of_an_archived_build_carries_its_one_archive_bin_and_installs(
    offline_repo: Repository, make_device: Callable[..., DeviceDir], tmp_path: Path
) -> None:
    for minor in range(1, 10):  # the model's role keeps the newest 8: 1.1 is archived
        publish(offline_repo, "alpha", f"1.{minor}", spl="2026-02-01")
    state = offline_repo.state()
    path = "alpha/1.1/alpha-1.1.img"
    assert path not in state.model("alpha").signed.targets
    card = tmp_path / "card"
    export_bundle(offline_repo, "alpha", card, build="1.1")
    carried = sorted(p.name for p in (card / "metadata").glob("*.alpha.archive*.json"))
    archive_version = state.archive("alpha").signed.version
    bin_name = str(state.archive_bin_for("alpha", path))
    bin_version = state.delegated(bin_name).signed.version
    assert carried == sorted(
        [f"{archive_version}.alpha.archive.json", f"{bin_version}.{bin_name}.json"]
    )
    device = make_device(bundles=[str(card)])

    result = Agent(device, clock=later(1)).update()

    assert result.status == "installed"
    assert result.build == "1.1"
    assert device.slot_image(Slot.B).read_bytes() == image_bytes("alpha/1.1")
