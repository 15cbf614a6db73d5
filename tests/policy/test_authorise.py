"""Signing releases under the rules: the eligibility they carry, and what is refused."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from patchline.errors import NotAuthorisedError
from patchline.policy import Amendment, Effect, Rule
from patchline.policy.authorise import authorise_release, authorise_with
from patchline.wire.release import Eligibility, UpdateClass
from tests.policy.test_story_2018 import BAN, EXTENSION, RULES

SECURITY = UpdateClass.SECURITY


def test_before_the_ban_normal_service_signs_any_class_valid_until_the_ban_starts() -> None:
    granted = authorise_release(
        model="aurora", update_class=UpdateClass.FUNCTIONAL, rules=RULES, day=date(2018, 4, 5)
    )
    assert granted.rule.id == "normal"
    assert granted.eligibility == Eligibility(valid_until=BAN, rule="normal")


def test_a_ban_announced_ahead_cuts_the_validity_of_what_is_signed_before_it() -> None:
    rules = (
        Rule(id="normal", effect=Effect.ALLOW, priority=10),
        Rule(id="ban", effect=Effect.BLOCK, priority=100, valid_from=BAN),
    )
    granted = authorise_release(model="m", update_class=SECURITY, rules=rules, day=date(2018, 4, 1))
    assert granted.eligibility.valid_until == BAN
    assert any("valid until 2018-04-15: rule ban" in reason for reason in granted.reasons)


def test_during_the_ban_nothing_is_signed_and_the_ban_is_named() -> None:
    with pytest.raises(NotAuthorisedError, match=r"rule denial-2018 .* blocks all updates"):
        authorise_release(model="aurora", update_class=SECURITY, rules=RULES, day=date(2018, 5, 1))


def test_in_the_licence_window_a_security_build_carries_the_licence_scope() -> None:
    granted = authorise_release(
        model="aurora", update_class=SECURITY, rules=RULES, day=date(2018, 7, 5)
    )
    assert granted.rule.id == "L-2018-07"
    assert granted.eligibility == Eligibility(
        regions_excluded=("KP",),
        deployed_before=BAN,
        valid_until=date(2018, 8, 1),
        rule="L-2018-07",
    )


def test_in_the_licence_window_a_functional_build_is_refused() -> None:
    with pytest.raises(NotAuthorisedError, match="denial-2018"):
        authorise_release(
            model="aurora", update_class=UpdateClass.FUNCTIONAL, rules=RULES, day=date(2018, 7, 5)
        )


def test_an_amendment_in_force_on_the_signing_day_is_what_gets_signed() -> None:
    granted = authorise_release(
        model="aurora",
        update_class=SECURITY,
        rules=RULES,
        amendments=(EXTENSION,),
        day=date(2018, 7, 30),
    )
    assert granted.eligibility.valid_until == date(2018, 8, 15)


def test_after_the_licence_lapses_nothing_is_signed() -> None:
    with pytest.raises(NotAuthorisedError, match="denial-2018"):
        authorise_release(model="aurora", update_class=SECURITY, rules=RULES, day=date(2018, 8, 1))


def test_a_region_block_of_higher_priority_becomes_an_excluded_region() -> None:
    rules = (
        Rule(id="all", effect=Effect.ALLOW, priority=10),
        Rule(id="no-xx", effect=Effect.BLOCK, priority=50, regions_allowed=["XX"]),
    )
    granted = authorise_release(model="m", update_class=SECURITY, rules=rules, day=BAN)
    assert granted.eligibility.regions_excluded == ("XX",)
    assert granted.eligibility.rule == "all"


def test_a_block_by_deployment_date_cannot_be_signed_and_says_why() -> None:
    rules = (
        Rule(id="all", effect=Effect.ALLOW, priority=10),
        Rule(id="old", effect=Effect.BLOCK, priority=50, deployed_before=BAN),
    )
    with pytest.raises(NotAuthorisedError, match="cannot state"):
        authorise_release(model="m", update_class=SECURITY, rules=rules, day=BAN)


def test_with_no_rule_allowing_it_nothing_is_signed() -> None:
    rules = (Rule(id="other", effect=Effect.ALLOW, models=["n"]),)
    with pytest.raises(NotAuthorisedError, match="no rule in force on 2018-04-15 allows"):
        authorise_release(model="m", update_class=SECURITY, rules=rules, day=BAN)


def test_a_lower_priority_rule_never_widens_what_the_deciding_rule_signs() -> None:
    rules = (
        Rule(id="wide", effect=Effect.ALLOW, priority=1),
        Rule(id="narrow", effect=Effect.ALLOW, priority=9, regions_allowed=["DE"]),
    )
    granted = authorise_release(model="m", update_class=SECURITY, rules=rules, day=BAN)
    assert granted.eligibility.regions_allowed == ("DE",)


def test_an_amendment_not_yet_effective_is_not_signed() -> None:
    later = Amendment(
        rule_id="L-2018-07", effective_from=date(2018, 7, 20), changes={"regions_excluded": []}
    )
    granted = authorise_release(
        model="aurora",
        update_class=SECURITY,
        rules=RULES,
        amendments=(later,),
        day=date(2018, 7, 5),
    )
    assert granted.eligibility.regions_excluded == ("KP",)


def test_the_publishers_own_limits_are_kept_and_the_allowing_rule_named() -> None:
    given = Eligibility(regions_excluded=("KP",), deployed_before=BAN, valid_until=date(2018, 8, 1))
    granted = authorise_with(
        given, model="aurora", update_class=SECURITY, rules=RULES, day=date(2018, 7, 5)
    )
    assert granted.eligibility == replace(given, rule="L-2018-07")
    narrower = authorise_with(
        Eligibility(regions_allowed=("DE",)),
        model="aurora",
        update_class=SECURITY,
        rules=RULES,
        day=date(2018, 7, 5),
    )
    assert narrower.eligibility.regions_allowed == ("DE",)
    assert narrower.eligibility.deployed_before == BAN
    with pytest.raises(NotAuthorisedError, match="leave no region"):
        authorise_with(
            Eligibility(regions_allowed=("KP",)),
            model="aurora",
            update_class=SECURITY,
            rules=RULES,
            day=date(2018, 7, 5),
        )
