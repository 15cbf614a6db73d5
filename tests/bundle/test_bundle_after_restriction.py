"""A card made before a release was restricted cannot bring it back to a phone that has
since seen the restriction online."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from patchline.agent import Agent, DeviceDir
from patchline.agent.state import load_state
from patchline.clock import FixedClock
from patchline.errors import NoUpdateSourceError, UpdateRefusedError
from patchline.repository import Repository
from patchline.repository.bundles import export_bundle
from patchline.repository.restrict import restrict_releases
from patchline.wire.release import Eligibility, ReleaseInfo
from tests.agent.conftest import hosts  # noqa: F401  (a fixture, shared)
from tests.agent.hosts import RangeHost
from tests.conftest import START, publish


def test_an_older_card_is_refused_once_the_phone_trusts_newer_metadata(
    offline_repo: Repository,
    make_device: Callable[..., DeviceDir],
    hosts: Callable[..., RangeHost],  # noqa: F811
    tmp_path: Path,
) -> None:
    publish(offline_repo, "alpha", "1.1", spl="2026-02-01")
    old_card = tmp_path / "old-card"
    export_bundle(offline_repo, "alpha", old_card)
    today = START.date()

    def withdrawn(info: ReleaseInfo) -> Eligibility:
        return replace(info.eligibility, valid_until=today)

    assert restrict_releases(offline_repo, withdrawn)
    mirror = hosts(offline_repo.layout.public_dir)
    device = make_device(mirrors=[mirror.url])
    clock = FixedClock(START + timedelta(hours=1))
    with pytest.raises(UpdateRefusedError, match="release validity ended"):
        Agent(device, clock=clock).update()  # online: sees 1.1 withdrawn

    config = device.load_config()
    device.save_config(msgspec.structs.replace(config, mirrors=[], bundles=[str(old_card)]))
    with pytest.raises(NoUpdateSourceError) as refused:
        Agent(device, clock=clock).update()

    assert "the bundle's alpha metadata is version 2, older than version 3" in refused.value.message
    assert "ask for a newer bundle" in refused.value.message
    assert load_state(device).running.build == "1.0"


def test_a_phone_that_never_went_online_still_takes_the_card(
    offline_repo: Repository, make_device: Callable[..., DeviceDir], tmp_path: Path
) -> None:
    publish(offline_repo, "alpha", "1.1", spl="2026-02-01")
    card = tmp_path / "card"
    export_bundle(offline_repo, "alpha", card)
    device = make_device(bundles=[str(card)])
    result = Agent(device, clock=FixedClock(START + timedelta(days=1))).update()
    assert result.build == "1.1"
