"""The agent finds an update wherever one is, installs it to the other slot, boots it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from patchline.agent import Agent, DeviceDir
from patchline.agent.reports import Outbox
from patchline.agent.state import load_state
from patchline.clock import FixedClock, SystemClock
from patchline.errors import NoUpdateSourceError, UpdateRefusedError
from patchline.repository import Repository
from patchline.repository.refresh import refresh
from patchline.wire.device_api import ReportStatus, Slot
from patchline.wire.release import Eligibility
from tests.agent.conftest import closed_port_url, snapshot_tree
from tests.agent.hosts import RangeHost
from tests.conftest import image_bytes, publish


def statuses(device: DeviceDir) -> list[ReportStatus]:
    return [r.status for _, r in Outbox(device.outbox).pending()]


def test_update_from_a_mirror_installs_the_new_build_in_the_other_slot_and_boots_it(
    repo: Repository, make_device: Callable[..., DeviceDir], hosts: Callable[..., RangeHost]
) -> None:
    publish(repo, "alpha", "1.0")
    publish(repo, "alpha", "2.0", spl="2026-02-01")
    host = hosts(repo.layout.public_dir)
    device = make_device(mirrors=[host.url])

    result = Agent(device, clock=SystemClock()).update()

    assert result.status == "installed"
    assert result.build == "2.0"
    state = load_state(device)
    assert state.active is Slot.B
    assert state.running.build == "2.0"
    assert device.slot_image(Slot.B).read_bytes() == image_bytes("alpha/2.0")
    assert device.slot_image(Slot.A).read_bytes() == image_bytes("alpha/1.0")
    assert statuses(device) == [
        ReportStatus.DOWNLOADING,
        ReportStatus.INSTALLED,
        ReportStatus.BOOTED_HEALTHY,
    ]
    again = Agent(device, clock=SystemClock()).update()
    assert again.status == "up-to-date"
    assert len(host.target_requests()) == 1


def test_an_sd_card_bundle_updates_a_device_with_no_network_at_all(
    repo: Repository, make_device: Callable[..., DeviceDir], tmp_path: Path
) -> None:
    publish(repo, "alpha", "2.0")
    card = snapshot_tree(repo, tmp_path / "sdcard" / "updates")
    device = make_device(bundles=[str(card)], server_url=closed_port_url(), credential="d.s")

    result = Agent(device, clock=SystemClock()).update()

    assert result.status == "installed"
    assert result.source == f"SD card {card}"
    assert load_state(device).running.build == "2.0"


def test_the_next_mirror_is_used_when_the_first_source_is_down(
    repo: Repository, make_device: Callable[..., DeviceDir], hosts: Callable[..., RangeHost]
) -> None:
    publish(repo, "alpha", "2.0")
    down = closed_port_url()
    host = hosts(repo.layout.public_dir)
    device = make_device(mirrors=[down, host.url])

    result = Agent(device, clock=SystemClock()).update()

    assert result.build == "2.0"
    assert result.source == f"Mirror {host.url}"
    assert result.attempts[0].source == f"Mirror {down}"
    assert result.attempts[0].reason == "connection refused"


def test_with_no_source_reachable_the_error_names_every_source_and_why(
    repo: Repository, make_device: Callable[..., DeviceDir], tmp_path: Path
) -> None:
    empty_card = tmp_path / "sdcard"
    empty_card.mkdir()
    server = closed_port_url()
    mirror = closed_port_url()
    device = make_device(
        bundles=[str(empty_card)], server_url=server, credential="dev.secret", mirrors=[mirror]
    )

    with pytest.raises(NoUpdateSourceError) as caught:
        Agent(device, clock=SystemClock()).update()

    text = str(caught.value)
    assert text.startswith("No update source reachable.")
    assert f"SD card {empty_card}: no update bundle in this folder" in text
    assert f"Server {server}: connection refused." in text
    assert f"Mirror {mirror}: connection refused." in text
    assert "keeps running build 1.0" in text
    assert "What to do: connect to a network, or insert an SD card" in text
    assert statuses(device) == [ReportStatus.FAILED]
    assert load_state(device).running.build == "1.0"


def test_a_bundle_without_the_devices_model_says_so(
    repo: Repository, make_device: Callable[..., DeviceDir], tmp_path: Path
) -> None:
    publish(repo, "beta", "2.0")
    card = snapshot_tree(repo, tmp_path / "card")
    device = make_device(bundles=[str(card)])
    # alpha has no releases at all: the device is up to date from this bundle's view.
    result = Agent(device, clock=SystemClock()).update()
    assert result.status == "up-to-date"


def test_offline_the_agent_enforces_the_signed_eligibility_itself(
    repo: Repository, make_device: Callable[..., DeviceDir], hosts: Callable[..., RangeHost]
) -> None:
    publish(repo, "alpha", "2.0", eligibility=Eligibility(regions_excluded=("KP",)))
    host = hosts(repo.layout.public_dir)
    device = make_device(mirrors=[host.url], region="KP")

    with pytest.raises(UpdateRefusedError, match="region KP is excluded"):
        Agent(device, clock=SystemClock()).update()

    assert host.target_requests() == []
    assert load_state(device).running.build == "1.0"


def test_an_expired_licence_window_is_refused_on_the_device_clock(
    repo: Repository, make_device: Callable[..., DeviceDir], hosts: Callable[..., RangeHost]
) -> None:
    clock = repo.clock
    assert isinstance(clock, FixedClock)
    until = (clock.now() + timedelta(days=2)).date()
    publish(repo, "alpha", "2.0", eligibility=Eligibility(valid_until=until))
    host = hosts(repo.layout.public_dir)
    device = make_device(mirrors=[host.url])
    clock.advance(timedelta(days=3))
    refresh(repo)  # the timestamp stays fresh on the advanced clock; only the licence ends

    with pytest.raises(UpdateRefusedError, match=f"release validity ended on {until}"):
        Agent(device, clock=clock).update()


def test_a_lower_security_patch_level_is_never_installed(
    repo: Repository, make_device: Callable[..., DeviceDir], hosts: Callable[..., RangeHost]
) -> None:
    publish(repo, "alpha", "2.0", spl="2026-01-01")
    host = hosts(repo.layout.public_dir)
    device = make_device(mirrors=[host.url], spl="2026-03-01")

    with pytest.raises(UpdateRefusedError, match="security patch level 2026-01-01 is below"):
        Agent(device, clock=SystemClock()).update()


def test_reports_made_offline_stay_queued_on_disk_until_a_server_takes_them(
    repo: Repository, make_device: Callable[..., DeviceDir], hosts: Callable[..., RangeHost]
) -> None:
    publish(repo, "alpha", "2.0")
    host = hosts(repo.layout.public_dir)
    device = make_device(mirrors=[host.url], server_url=closed_port_url(), credential="d.s")

    Agent(device, clock=SystemClock()).update()

    files = sorted(device.outbox.glob("*.json"))
    assert len(files) == 3
    ids = {msgspec.json.decode(f.read_bytes())["report_id"] for f in files}
    assert len(ids) == 3
    assert hashlib.sha256(device.slot_image(Slot.B).read_bytes()).hexdigest() == (
        load_state(device).running.sha256
    )
