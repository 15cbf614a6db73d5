"""The director's cohort cache gives exactly the decisions ``decide`` gives."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Root

from patchline.director.answers import Director
from patchline.director.catalog import Catalog
from patchline.director.rollout_gate import RolloutView, Selection
from patchline.policy.decide import Decision, decide, decision_digest
from patchline.policy.facts import DeviceFacts
from patchline.policy.rules import Effect, Rule
from patchline.wire.director import Action, verify_decision
from tests.policy.policy_factories import delta, device, release

NOW = datetime(2018, 7, 10, 12, 0, tzinfo=UTC)


def make_director(signer: CryptoSigner) -> Director:
    director = Director(
        signer, mirrors=["http://m"], poll_after_seconds=60, validity=timedelta(hours=2)
    )
    releases = (
        release("1.1", min_battery_percent=30, allowed_networks=frozenset({"wifi", "ethernet"})),
        release("1.2", "functional", deltas=(delta("1.2", "1.0", device().build_sha256),)),
    )
    rules = (
        Rule(id="sec", effect=Effect.ALLOW, priority=5, update_classes=frozenset({"security"})),
        Rule(id="eu-only", effect=Effect.BLOCK, priority=9, regions_excluded=frozenset({"DE"})),
    )
    director.use_catalog(Catalog(version=1, releases={"aurora": releases}, rules=rules))
    return director


def decide_for(director: Director, facts: DeviceFacts, **extra: Any) -> tuple[Decision, str]:
    """The director's decision for a device with these facts."""
    return director.decide(
        model=facts.model,
        region=facts.region,
        deployed_on=facts.deployed_on,
        build=facts.build,
        build_sha256=facts.build_sha256,
        security_patch_level=facts.security_patch_level.isoformat(),
        free_bytes=facts.free_bytes,
        battery_percent=facts.battery_percent,
        network=facts.network,
        now=NOW,
        **extra,
    )


def test_cached_decisions_equal_fresh_ones_for_every_phone_state() -> None:
    director = make_director(CryptoSigner.generate_ed25519())
    for region, free, battery, network in itertools.product(
        ("DE", "FR"), (0, 999_999, 1_000_000, 10**9), (10, 30, 90), ("wifi", "cellular", "offline")
    ):
        facts = device(region=region, free_bytes=free, battery_percent=battery, network=network)
        cached, digest = decide_for(director, facts)
        fresh = decide(
            facts, director.catalog.releases_of("aurora"), director.catalog.rules, (), NOW.date()
        )
        assert cached == fresh, (region, free, battery, network)
        assert digest == decision_digest(fresh)


def test_answers_are_signed_once_while_the_decision_holds() -> None:
    signer = CryptoSigner.generate_ed25519()
    director = make_director(signer)
    root = Root(expires=NOW + timedelta(days=1))
    root.add_key(signer.public_key, "targets")
    facts = device()
    decision, digest = decide_for(director, facts)
    first = director.answer("dev-1", decision, digest, NOW)
    assert director.answer("dev-1", decision, digest, NOW + timedelta(minutes=30)) is first
    assert director.signatures == 1
    later = director.answer("dev-1", decision, digest, NOW + timedelta(hours=1, minutes=1))
    assert director.signatures == 2  # past half its validity: signed again, newer version
    import json

    old = verify_decision(root, json.loads(first)["director"], device_id="dev-1", now=NOW)
    new = verify_decision(
        root, json.loads(later)["director"], device_id="dev-1", now=NOW + timedelta(hours=1)
    )
    assert new.version > old.version
    assert old.action is Action.INSTALL
    assert director.answer("dev-2", decision, digest, NOW) != first  # names its own device


def test_a_stepping_stone_is_offered_first_to_devices_on_older_builds() -> None:
    """A rollout of 2.0 naming 1.5 as its stepping stone: a device on 1.0 it reaches is
    offered 1.5 (not 1.7, newer than the stone), one on 1.5 or later is offered 2.0, and
    rules that forbid the stone (a functional update where only security ones are
    allowed) leave the device on 1.0 rather than letting it skip the stone."""
    director = Director(
        CryptoSigner.generate_ed25519(),
        mirrors=[],
        poll_after_seconds=60,
        validity=timedelta(hours=2),
    )
    releases = (release("1.5", "functional"), release("1.7"), release("2.0"))
    view = RolloutView(
        "R-4", "aurora", "2.0", "active", 0, (10_000,), Selection(), stepping_stone="1.5"
    )
    allow = Rule(id="all", effect=Effect.ALLOW, priority=5)
    director.use_catalog(
        Catalog(
            version=1,
            releases={"aurora": releases},
            rules=(allow,),
            rollouts={("aurora", "2.0"): view},
        )
    )

    def offered(build: str) -> tuple[str | None, tuple[str, ...]]:
        decision, _ = decide_for(director, device(build=build), device_id="dev-1")
        return (decision.release.build if decision.release else None), decision.reasons

    build, reasons = offered("1.0")
    assert build == "1.5"
    assert "rollout R-4 of aurora 2.0 requires build 1.5 first: this device runs 1.0" in (
        " ".join(reasons)
    )
    assert offered("1.5")[0] == "2.0"
    assert offered("1.7")[0] == "2.0"
    security_only = Rule(
        id="sec", effect=Effect.ALLOW, priority=5, update_classes=frozenset({"security"})
    )
    director.use_catalog(dataclasses.replace(director.catalog, version=2, rules=(security_only,)))
    assert offered("1.0")[0] is None


def test_a_devices_kept_decision_equals_a_fresh_one_as_its_state_moves() -> None:
    """One device polls through changing phone states, regions, carriers, builds, days and
    catalogs; the director that keeps its last decision answers each poll as a director
    that never saw the device does, and a steady poll gets the kept decision back."""
    signer = CryptoSigner.generate_ed25519()
    director = make_director(signer)
    half = RolloutView("R-1", "aurora", "1.2", "active", 0, (5_000, 10_000), Selection())
    selective = RolloutView(
        "R-1", "aurora", "1.2", "active", 0, (10_000,), Selection(carriers=("acme",))
    )
    everything = (Rule(id="all", effect=Effect.ALLOW, priority=5), *director.catalog.rules[1:])
    catalogs = [
        director.catalog,
        dataclasses.replace(
            director.catalog, version=2, rules=everything, rollouts={("aurora", "1.2"): half}
        ),
        dataclasses.replace(
            director.catalog, version=3, rules=everything, rollouts={("aurora", "1.2"): selective}
        ),
    ]
    phones = list(itertools.product((0, 10**9), (10, 90), ("wifi", "cellular")))
    # Polls in which only the phone state, then only the carrier, changes from the last.
    states = [
        (catalog, region, build, carrier, *phone)
        for catalog, region, build, carrier in itertools.product(
            range(3), ("DE", "FR"), ("1.0", "1.1"), ("", "acme")
        )
        for phone in phones
    ] + [
        (catalog, region, build, carrier, *phone)
        for catalog, region, build, phone in itertools.product(
            range(3), ("DE", "FR"), ("1.0", "1.1"), phones
        )
        for carrier in ("", "acme", "")
    ]
    for catalog, region, build, carrier, free, battery, network in states:
        if director.catalog is not catalogs[catalog]:
            director.use_catalog(catalogs[catalog])
        facts = device(
            region=region, free_bytes=free, battery_percent=battery, network=network, build=build
        )
        for device_id in ("dev-1", "dev-2", "dev-3"):
            kept = decide_for(director, facts, device_id=device_id, carrier=carrier)
            fresh_director = make_director(signer)
            fresh_director.use_catalog(catalogs[catalog])
            fresh = decide_for(fresh_director, facts, device_id=device_id, carrier=carrier)
            assert kept == fresh, (catalog, region, build, carrier, free, battery, network)
            again = decide_for(director, facts, device_id=device_id, carrier=carrier)
            assert again == fresh
    # A steady poll is answered from what was kept.
    facts = device(free_bytes=10**9, battery_percent=90, network="wifi")
    first = decide_for(director, facts, device_id="dev-9")
    assert decide_for(director, facts, device_id="dev-9") is first
    # A failed build is never answered from what was kept.
    failed = {"1.1": "build 1.1 failed on this device"}
    assert decide_for(director, facts, device_id="dev-9", failed_builds=failed) != first
