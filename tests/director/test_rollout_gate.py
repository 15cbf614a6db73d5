"""Rollout membership: a stable bucket per (rollout, device), phases that only add
devices, and the sentence a device is told."""

from __future__ import annotations

import hashlib
import itertools
from datetime import date

from patchline.director.rollout_gate import (
    BUCKETS,
    RolloutView,
    Selection,
    Subject,
    bucket,
    percent,
)


def test_the_bucket_is_the_first_four_bytes_of_sha256_modulo_10000() -> None:
    digest = hashlib.sha256(b"R-12:device-1").digest()
    assert bucket("R-12", "device-1") == int.from_bytes(digest[:4], "big") % BUCKETS
    shares = [10, 100, 1000, 5000, 10_000]
    devices = [f"d{i}" for i in range(20_000)]
    cohorts = [{d for d in devices if bucket("R-1", d) < s} for s in shares]
    for smaller, larger in itertools.pairwise(cohorts):
        assert smaller < larger
    for share, cohort in zip(shares, cohorts, strict=True):
        expected = len(devices) * share / BUCKETS
        assert abs(len(cohort) - expected) <= 4 * expected**0.5 + 1


def subject(device_id: str, **changes: object) -> Subject:
    values: dict[str, object] = {
        "device_id": device_id,
        "region": "DE",
        "carrier": "",
        "deployed_on": None,
        "build": "1.0",
        "patch_level": date(2026, 1, 1),
        **changes,
    }
    return Subject(**values)  # type: ignore[arg-type]


def first_inside_and_outside(rollout_id: str, share: int) -> tuple[str, str]:
    """A device id whose bucket the share covers, and one it does not."""
    ids = (f"d{i}" for i in itertools.count())
    inside = next(d for d in ids if bucket(rollout_id, d) < share)
    outside = next(d for d in ids if bucket(rollout_id, d) >= share)
    return inside, outside


def test_the_verdict_says_whether_and_why() -> None:
    view = RolloutView(
        id="R-12",
        model="aurora",
        build="1.1",
        state="active",
        phase=0,
        shares=(10, 100, 1000, 5000, 10_000),
        selection=Selection(regions=("DE",)),
    )
    inside, outside = first_inside_and_outside("R-12", 10)
    assert view.verdict(subject(inside)) == (
        True,
        "in rollout R-12 of aurora 1.1, phase 1 of 5, 0.1 %",
    )
    assert view.verdict(subject(outside)) == (
        False,
        "not yet reached by rollout R-12 of aurora 1.1: phase 1 of 5 covers 0.1 %",
    )
    assert view.verdict(subject(inside, region="US")) == (
        False,
        "not selected by rollout R-12 of aurora 1.1: region US is not one of DE",
    )
    halted = RolloutView(**{**view.__dict__, "state": "halted"})
    assert not halted.verdict(subject(inside))[0]
    assert percent(100) == "1 %"
    assert Selection.from_json(Selection(regions=("DE",)).to_json()) == Selection(regions=("DE",))


def test_carriers_and_groups_select_and_the_sentence_names_them() -> None:
    selection = Selection(carriers=("vodafone", "o2"), groups=("beta", "lab"))
    view = RolloutView("R-3", "aurora", "1.1", "active", 0, (10_000,), selection, frozenset({"d1"}))
    assert view.verdict(subject("d1", carrier="o2")) == (
        True,
        "in rollout R-3 of aurora 1.1, phase 1 of 1, 100 %",
    )
    assert view.verdict(subject("d1", carrier="telekom"))[1] == (
        "not selected by rollout R-3 of aurora 1.1: carrier telekom is not one of vodafone, o2"
    )
    assert view.verdict(subject("d1"))[1] == (
        "not selected by rollout R-3 of aurora 1.1: carrier (none) is not one of vodafone, o2"
    )
    assert view.verdict(subject("d2", carrier="o2"))[1] == (
        "not selected by rollout R-3 of aurora 1.1: the device is in none of the groups beta, lab"
    )
    assert Selection.from_json(selection.to_json()) == selection


def test_a_listing_without_build_or_patch_level_leaves_those_to_the_check_in() -> None:
    selection = Selection(builds=("1.0",), patch_level_from=date(2026, 1, 1))
    unknown = Subject("d1", "DE", "", None)
    assert selection.mismatch(unknown, frozenset()) is None
    assert selection.mismatch(subject("d1", build="0.9"), frozenset()) is not None


def test_a_stepping_stone_is_asked_of_older_builds_only_and_outlives_completion() -> None:
    view = RolloutView(
        "R-4", "aurora", "2.0", "active", 0, (10_000,), Selection(), stepping_stone="1.5"
    )
    assert view.stone_first("1.0") == (
        "rollout R-4 of aurora 2.0 requires build 1.5 first: this device runs 1.0, "
        "so it is offered 1.5 or older before 2.0"
    )
    assert view.stone_first("1.5") is None
    assert view.stone_first("1.6") is None
    completed = RolloutView(**{**view.__dict__, "state": "completed"})
    assert completed.verdict(subject("d1")) == (True, None)
    assert completed.stone_first("1.0") is not None
