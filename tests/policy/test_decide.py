from __future__ import annotations

import re
from datetime import date

import pytest

from patchline.errors import InvalidRuleError
from patchline.policy import Action, Effect, Rule, cohort_key, decide, decision_digest
from patchline.wire.release import Eligibility, UpdateClass
from tests.policy.policy_factories import allow_all, block_all, device, release

DAY = date(2018, 7, 10)


def test_without_any_rule_nothing_is_offered_default_deny() -> None:
    decision = decide(device(), [release("1.1")], [], [], DAY)
    assert decision.action is Action.NONE
    assert decision.reasons == (
        "no update is offered to build 1.0 of model aurora",
        "build 1.1 (security update) is not offered: no rule in force allows it",
    )
    assert decision.rule_ids == ()


def test_a_rule_for_another_model_does_not_allow_this_one() -> None:
    decision = decide(device(), [release("1.1")], [allow_all(models=["comet"])], [], DAY)
    assert decision.action is Action.NONE
    assert not any("comet" in reason for reason in decision.reasons)


def test_an_allowing_rule_offers_the_newest_candidate() -> None:
    releases = [release("1.2"), release("1.10"), release("1.9")]
    decision = decide(device(), releases, [allow_all()], [], DAY)
    assert decision.action is Action.INSTALL
    assert decision.release is not None
    assert decision.release.build == "1.10"
    assert decision.target_path == "aurora/1.10/aurora-1.10.img"
    assert decision.reasons[1] == "rule allow-all (priority 10) allows all updates"
    assert decision.rule_ids == ("allow-all",)


def test_a_higher_priority_allow_overrides_a_block() -> None:
    rules = [block_all(priority=100), allow_all(priority=200)]
    decision = decide(device(), [release("1.1")], rules, [], DAY)
    assert decision.action is Action.INSTALL
    assert decision.reasons[1:3] == (
        "rule allow-all (priority 200) allows all updates",
        "overridden: rule block-all (priority 100) blocks all updates",
    )
    assert decision.rule_ids == ("allow-all", "block-all")


def test_a_higher_priority_block_overrides_an_allow() -> None:
    rules = [block_all(priority=300), allow_all(priority=200)]
    decision = decide(device(), [release("1.1")], rules, [], DAY)
    assert decision.action is Action.NONE
    assert decision.reasons[1] == (
        "build 1.1 (security update) is not offered: "
        "rule block-all (priority 300) blocks all updates"
    )


def test_on_equal_priority_a_block_wins() -> None:
    for order in (
        [block_all(priority=50), allow_all(priority=50)],
        [allow_all(priority=50), block_all(priority=50)],
    ):
        decision = decide(device(), [release("1.1")], order, [], DAY)
        assert decision.action is Action.NONE
        assert "rule block-all (priority 50) blocks all updates" in decision.reasons[1]


def test_a_rule_not_in_force_does_not_decide_but_is_reported() -> None:
    rules = [allow_all(valid_until=date(2018, 7, 1)), allow_all("later", valid_from="2019-01-01")]
    decision = decide(device(), [release("1.1")], rules, [], DAY)
    assert decision.action is Action.NONE
    assert "rule allow-all lapsed on 2018-07-01" in decision.reasons
    assert "rule later is not yet in force; it starts on 2019-01-01" in decision.reasons
    assert decision.rule_ids == ("allow-all", "later")


def test_a_class_rule_skips_to_the_newest_release_of_an_allowed_class() -> None:
    releases = [release("1.1", "security"), release("1.2", "functional")]
    rules = [Rule(id="sec", effect=Effect.ALLOW, update_classes=frozenset({UpdateClass.SECURITY}))]
    decision = decide(device(), releases, rules, [], DAY)
    assert decision.release is not None
    assert decision.release.build == "1.1"
    assert (
        "build 1.2 (functional update) is not offered: no rule in force allows it; rule sec "
        "(priority 0) covers only security updates" in decision.reasons
    )


def test_never_down_a_newer_build_with_an_older_patch_level_is_not_a_candidate() -> None:
    releases = [release("1.1", security_patch_level=date(2018, 2, 1))]
    decision = decide(device(), releases, [allow_all()], [], DAY)
    assert decision.action is Action.NONE
    assert decision.reasons == (
        "no update is offered to build 1.0 of model aurora",
        "build 1.1 (security update) is not offered: its security patch level 2018-02-01 "
        "is older than the device's 2018-03-01",
    )


def test_never_down_an_older_or_equal_build_is_not_offered() -> None:
    releases = [release("0.9"), release("1.0")]
    decision = decide(device(), releases, [allow_all()], [], DAY)
    assert decision.action is Action.NONE
    assert decision.reasons == ("no release newer than 1.0 for model aurora",)


def test_an_equal_patch_level_is_not_a_downgrade() -> None:
    releases = [release("1.1", security_patch_level=date(2018, 3, 1))]
    assert decide(device(), releases, [allow_all()], [], DAY).action is Action.INSTALL


def test_releases_of_other_models_are_ignored() -> None:
    releases = [release("2.0", model="comet")]
    decision = decide(device(), releases, [allow_all()], [], DAY)
    assert decision.reasons == ("no release newer than 1.0 for model aurora",)


def test_the_signed_eligibility_must_pass_before_any_rule() -> None:
    fenced = release("1.2", eligibility=Eligibility(regions_excluded=("DE",)))
    decision = decide(device(), [fenced, release("1.1")], [allow_all()], [], DAY)
    assert decision.release is not None
    assert decision.release.build == "1.1"
    assert (
        "build 1.2 (security update) is not offered: its signed eligibility refuses this "
        "device: region DE is excluded"
    ) in decision.reasons


def test_a_signed_validity_end_refuses_the_release_on_that_day() -> None:
    expiring = release("1.1", eligibility=Eligibility(valid_until=DAY))
    decision = decide(device(), [expiring], [allow_all()], [], DAY)
    assert decision.action is Action.NONE
    assert "release validity ended on 2018-07-10" in decision.reasons[1]


def test_two_rules_with_one_id_are_refused() -> None:
    with pytest.raises(InvalidRuleError, match="allow-all"):
        decide(device(), [release("1.1")], [allow_all(), allow_all(priority=5)], [], DAY)


def test_the_cohort_key_leaves_out_the_device_id_and_equal_keys_get_equal_decisions() -> None:
    first, second = device(device_id="a"), device(device_id="b")
    assert cohort_key(first, DAY) == cohort_key(second, DAY)
    assert "device_id" not in type(cohort_key(first, DAY))._fields
    assert "a" not in cohort_key(first, DAY)
    one = decide(first, [release("1.1")], [allow_all()], [], DAY)
    two = decide(second, [release("1.1")], [allow_all()], [], DAY)
    assert one == two
    assert decision_digest(one) == decision_digest(two)


@pytest.mark.parametrize(
    "change",
    [
        {"model": "comet"},
        {"region": "FR"},
        {"deployed_on": date(2018, 1, 1)},
        {"build": "1.1"},
        {"build_sha256": "0" * 64},
        {"security_patch_level": date(2018, 4, 1)},
        {"free_bytes": 1},
        {"battery_percent": 5},
        {"network": "cellular"},
    ],
)
def test_every_fact_a_decision_depends_on_is_in_the_cohort_key(change: dict[str, object]) -> None:
    assert cohort_key(device(**change), DAY) != cohort_key(device(), DAY)


def test_the_day_is_in_the_cohort_key() -> None:
    assert cohort_key(device(), DAY) != cohort_key(device(), date(2018, 7, 11))


def test_the_digest_is_a_sha256_hex_that_changes_when_the_decision_does() -> None:
    offered = decide(device(), [release("1.1")], [allow_all()], [], DAY)
    refused = decide(device(), [release("1.1")], [block_all()], [], DAY)
    assert re.fullmatch(r"[0-9a-f]{64}", decision_digest(offered))
    assert decision_digest(offered) != decision_digest(refused)


def test_the_digest_does_not_change_from_day_to_day_while_the_decision_holds() -> None:
    one = decide(device(), [release("1.1")], [allow_all()], [], DAY)
    later = decide(device(), [release("1.1")], [allow_all()], [], date(2018, 7, 11))
    assert decision_digest(one) == decision_digest(later)
