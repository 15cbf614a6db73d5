"""Hostile or broken mirrors are refused with the right reason, and the agent moves on
to the next source, which installs the genuine update."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from patchline.agent import Agent, DeviceDir
from patchline.agent.reports import Outbox
from patchline.agent.state import load_state
from patchline.clock import FixedClock, SystemClock
from patchline.repository import Repository, refresh
from patchline.wire.device_api import ReportCode, ReportStatus, Slot
from tests.agent.conftest import snapshot_tree
from tests.agent.hosts import RangeHost
from tests.conftest import image_bytes, publish


def update_via(bad: RangeHost, good: RangeHost, device: DeviceDir) -> tuple[str, ReportCode]:
    """Update with ``bad`` first, ``good`` second; return the bad mirror's refusal."""
    result = Agent(device, clock=SystemClock()).update()
    assert result.status == "installed"
    assert result.source == f"Mirror {good.url}"
    assert load_state(device).active is Slot.B
    assert device.slot_image(Slot.B).read_bytes() == image_bytes("alpha/2.0")
    (attempt,) = result.attempts
    assert attempt.source == f"Mirror {bad.url}"
    return attempt.reason, attempt.code


@pytest.fixture
def two_mirrors(
    repo: Repository,
    make_device: Callable[..., DeviceDir],
    hosts: Callable[..., RangeHost],
) -> Callable[..., tuple[RangeHost, RangeHost, DeviceDir]]:
    def make(**bad: object) -> tuple[RangeHost, RangeHost, DeviceDir]:
        publish(repo, "alpha", "2.0")
        bad_host = hosts(repo.layout.public_dir, **bad)
        good_host = hosts(repo.layout.public_dir)
        return bad_host, good_host, make_device(mirrors=[bad_host.url, good_host.url])

    return make


def test_a_tampered_image_is_refused_by_its_hash(two_mirrors: Callable[..., tuple]) -> None:
    bad, good, device = two_mirrors(tamper=True)
    reason, code = update_via(bad, good, device)
    assert "is not the signed" in reason
    assert "tampered image" in reason
    assert code is ReportCode.HASH_MISMATCH
    failed = [r for _, r in Outbox(device.outbox).pending() if r.status is ReportStatus.FAILED]
    assert failed[0].code is ReportCode.HASH_MISMATCH
    assert failed[0].source == f"Mirror {bad.url}"


def test_endless_data_is_cut_off_at_the_signed_length(two_mirrors: Callable[..., tuple]) -> None:
    bad, good, device = two_mirrors(endless=10 * 1024 * 1024)
    reason, code = update_via(bad, good, device)
    assert "more than the signed length of 65,536 bytes (endless data)" in reason
    assert code is ReportCode.DOWNLOAD_ERROR
    assert not device.staging_file(Slot.B).exists()
    (served,) = bad.target_requests()
    assert served.status == 200


def test_a_slow_trickle_is_refused_below_the_minimum_throughput(
    two_mirrors: Callable[..., tuple],
) -> None:
    bad, good, device = two_mirrors(trickle=True)
    reason, code = update_via(bad, good, device)
    assert "below the minimum of 65,536 (slow retrieval)" in reason
    assert code is ReportCode.DOWNLOAD_ERROR


def test_stale_expired_metadata_is_refused_with_its_age_and_the_device_clock(
    repo: Repository,
    clock: FixedClock,
    make_device: Callable[..., DeviceDir],
    hosts: Callable[..., RangeHost],
    tmp_path: Path,
) -> None:
    publish(repo, "alpha", "2.0")
    now = clock.now()
    clock.set(now - timedelta(days=4))
    refresh(repo, force_online=True)  # timestamp expires 3 days before now
    stale = hosts(snapshot_tree(repo, tmp_path / "stale"))
    clock.set(now)
    refresh(repo, force_online=True)
    good = hosts(repo.layout.public_dir)
    device = make_device(mirrors=[stale.url, good.url])

    reason, code = update_via(stale, good, device)

    assert reason.startswith("metadata expired 3 days ago: timestamp.json expired ")
    assert "(device clock " in reason
    assert code is ReportCode.METADATA_ERROR


def test_a_mirror_offering_only_an_older_build_is_refused_as_a_downgrade(
    repo: Repository,
    make_device: Callable[..., DeviceDir],
    hosts: Callable[..., RangeHost],
    tmp_path: Path,
) -> None:
    publish(repo, "alpha", "1.0")
    old = hosts(snapshot_tree(repo, tmp_path / "old"))
    publish(repo, "alpha", "2.0")
    good = hosts(repo.layout.public_dir)
    device = make_device(build="1.5", mirrors=[old.url, good.url])

    reason, code = update_via(old, good, device)

    assert reason == "offers build 1.0 at most, older than the running 1.5"
    assert code is ReportCode.DOWNGRADE
    assert old.target_requests() == []


def test_a_mirror_rolled_back_below_seen_metadata_is_refused(
    repo: Repository,
    make_device: Callable[..., DeviceDir],
    hosts: Callable[..., RangeHost],
    tmp_path: Path,
) -> None:
    publish(repo, "alpha", "1.0")
    old = hosts(snapshot_tree(repo, tmp_path / "old"))
    publish(repo, "alpha", "2.0")
    good = hosts(repo.layout.public_dir)
    device = make_device(build="1.0", mirrors=[good.url])
    Agent(device, clock=SystemClock()).update()  # the device has now seen the newer state
    publish(repo, "alpha", "3.0")
    config = device.load_config()
    device.save_config(type(config)(**{**_fields(config), "mirrors": [old.url, good.url]}))

    result = Agent(device, clock=SystemClock()).update()

    assert result.build == "3.0"
    (attempt,) = result.attempts
    assert "older than what this device already trusts" in attempt.reason
    assert attempt.code is ReportCode.METADATA_ERROR


def _fields(config: object) -> dict[str, object]:
    return {name: getattr(config, name) for name in config.__struct_fields__}  # type: ignore[attr-defined]


def test_a_mirror_that_redirects_once_is_followed_and_installs(
    repo: Repository,
    make_device: Callable[..., DeviceDir],
    hosts: Callable[..., RangeHost],
) -> None:
    publish(repo, "alpha", "2.0")
    good = hosts(repo.layout.public_dir)
    cdn = hosts(repo.layout.public_dir, redirect_to=good.url)
    device = make_device(mirrors=[cdn.url])

    result = Agent(device, clock=SystemClock()).update()

    assert result.status == "installed"
    assert result.source == f"Mirror {cdn.url}"
    assert result.attempts == ()
    assert device.slot_image(Slot.B).read_bytes() == image_bytes("alpha/2.0")
    assert {r.status for r in cdn.requests} == {302}
    assert good.target_requests()


def test_a_redirect_loop_is_named_as_one(two_mirrors: Callable[..., tuple]) -> None:
    bad, good, device = two_mirrors()
    bad.behaviour.redirect_to = bad.url

    reason, code = update_via(bad, good, device)

    assert reason.startswith(f"redirected more than 3 times (last to {bad.url}/metadata/")
    assert "a redirect loop?" in reason
    assert "too many redirects" not in reason
    assert code is ReportCode.DOWNLOAD_ERROR
    assert len(bad.requests) == 4


def test_a_mirror_answering_an_html_page_is_named_as_such(
    two_mirrors: Callable[..., tuple],
) -> None:
    bad, good, device = two_mirrors(html=True)

    reason, code = update_via(bad, good, device)

    assert reason == (
        "the mirror answered an HTML page, not TUF metadata (Content-Type text/html; "
        "charset=utf-8; a captive portal or a wrong URL?)"
    )
    assert code is ReportCode.DOWNLOAD_ERROR
