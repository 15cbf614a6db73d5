"""Rollout membership: a stable bucket per (rollout, device), phases that only add
devices, and the sentence a device is told."""

from __future__ import annotations

import hashlib
import itertools
from datetime import date

from patchline.director.rollout_gate import BUCKETS, RolloutView, Selection, bucket, percent


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
    spl = date(2026, 1, 1)
    inside = next(f"d{i}" for i in range(100_000) if bucket("R-12", f"d{i}") < 10)
    outside = next(f"d{i}" for i in range(100_000) if bucket("R-12", f"d{i}") >= 10)
    assert view.verdict(inside, "DE", "1.0", spl, None) == (
        True,
        "in rollout R-12 of aurora 1.1, phase 1 of 5, 0.1 %",
    )
    assert view.verdict(outside, "DE", "1.0", spl, None) == (
        False,
        "not yet reached by rollout R-12 of aurora 1.1: phase 1 of 5 covers 0.1 %",
    )
    assert view.verdict(inside, "US", "1.0", spl, None) == (
        False,
        "not selected by rollout R-12 of aurora 1.1: region US is not one of DE",
    )
    halted = RolloutView(**{**view.__dict__, "state": "halted"})
    assert not halted.verdict(inside, "DE", "1.0", spl, None)[0]
    assert percent(100) == "1 %"
    assert Selection.from_json(Selection(regions=("DE",)).to_json()) == Selection(regions=("DE",))
