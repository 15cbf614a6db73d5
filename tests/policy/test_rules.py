from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from patchline.errors import InvalidRuleError, PolicyError, UsageError
from patchline.policy import Effect, Rule, RuleStatus
from patchline.wire.release import UpdateClass

LICENCE_JSON: dict[str, Any] = {
    "id": "L-2018-07",
    "title": "Temporary general licence",
    "effect": "allow",
    "priority": 200,
    "update_classes": ["security"],
    "models": [],
    "regions_allowed": [],
    "regions_excluded": ["KP"],
    "deployed_before": "2018-04-15",
    "deployed_on_or_after": None,
    "valid_from": "2018-07-02",
    "valid_until": "2018-08-01",
    "note": "BIS temporary general licence",
}


def licence(**changes: Any) -> Rule:
    return Rule.from_json({**LICENCE_JSON, **changes})


def scope_of(rule: Rule, **facts: Any) -> Any:
    values: dict[str, Any] = {
        "model": "aurora",
        "update_class": UpdateClass.SECURITY,
        "region": "DE",
        "deployed_on": date(2017, 6, 1),
    }
    values.update(facts)
    return rule.scope(**values)


def test_json_form_round_trips_and_reads_as_typed_values() -> None:
    rule = licence()
    assert rule.to_json() == LICENCE_JSON
    assert Rule.from_json(rule.to_json()) == rule
    assert rule.effect is Effect.ALLOW
    assert rule.update_classes == frozenset({UpdateClass.SECURITY})
    assert rule.valid_until == date(2018, 8, 1)


def test_python_values_are_normalised_like_json_values() -> None:
    rule = Rule(
        id="r1",
        effect=Effect.BLOCK,
        regions_excluded=frozenset({"kp"}),
        valid_from=date(2018, 4, 15),
    )
    assert rule.regions_excluded == frozenset({"KP"})
    assert rule == Rule.from_json(
        {"id": "r1", "effect": "block", "regions_excluded": ["KP"], "valid_from": "2018-04-15"}
    )


def test_only_id_and_effect_are_required_and_the_rest_default_to_no_limit() -> None:
    rule = Rule.from_json({"id": "open", "effect": "allow"})
    assert rule.priority == 0
    assert rule.update_classes == frozenset()
    assert rule.valid_from is None
    assert rule.valid_until is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"effect": None}, "effect"),
        ({"effect": "permit"}, "effect"),
        ({"id": "no spaces allowed"}, "id"),
        ({"priority": "high"}, "priority"),
        ({"priority": True}, "priority"),
        ({"update_classes": ["feature"]}, "update_classes"),
        ({"update_classes": "security"}, "update_classes"),
        ({"models": ["bad model"]}, "models"),
        ({"regions_excluded": ["North Korea"]}, "regions_excluded"),
        ({"regions_allowed": ["KP"]}, "regions_excluded"),
        ({"deployed_before": "15/04/2018"}, "deployed_before"),
        ({"deployed_on_or_after": "2018-04-15"}, "deployed_on_or_after"),
        ({"valid_from": "2018-08-01"}, "valid_until"),
        ({"valid_until": 20180801}, "valid_until"),
        ({"title": "x" * 201}, "title"),
        ({"note": 5}, "note"),
    ],
)
def test_a_malformed_rule_is_refused_with_the_field_named(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRuleError) as caught:
        licence(**changes)
    assert f"field {field!r}" in caught.value.message


def test_rule_errors_can_be_caught_as_usage_or_policy_errors() -> None:
    with pytest.raises(InvalidRuleError) as caught:
        Rule.from_json({"id": "r1"})
    assert isinstance(caught.value, UsageError)
    assert isinstance(caught.value, PolicyError)
    assert caught.value.exit_code == 2
    assert caught.value.message == "rule r1: field 'effect' is required"


def test_a_rule_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidRuleError, match="JSON object"):
        Rule.from_json(["allow"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("day", "status"),
    [
        (date(2018, 7, 1), RuleStatus.NOT_YET_IN_FORCE),
        (date(2018, 7, 2), RuleStatus.IN_FORCE),
        (date(2018, 7, 31), RuleStatus.IN_FORCE),
        (date(2018, 8, 1), RuleStatus.LAPSED),
    ],
)
def test_valid_from_is_inclusive_and_valid_until_exclusive(day: date, status: RuleStatus) -> None:
    assert licence().status_on(day) is status


def test_status_sentences_name_the_dates() -> None:
    rule = licence()
    assert rule.status_sentence(date(2018, 8, 1)) == "rule L-2018-07 lapsed on 2018-08-01"
    assert rule.status_sentence(date(2018, 7, 1)) == (
        "rule L-2018-07 is not yet in force; it starts on 2018-07-02"
    )
    assert rule.status_sentence(date(2018, 7, 10)) == "rule L-2018-07 is in force"


def test_a_rule_without_dates_is_always_in_force() -> None:
    rule = Rule(id="always", effect=Effect.ALLOW)
    assert rule.status_on(date(1970, 1, 1)) is RuleStatus.IN_FORCE
    assert rule.status_on(date(2999, 1, 1)) is RuleStatus.IN_FORCE


def test_update_classes_limit_the_scope() -> None:
    rule = licence()
    assert scope_of(rule).applies
    functional = scope_of(rule, update_class=UpdateClass.FUNCTIONAL)
    assert not functional.applies
    assert functional.release_mismatches == ("update class functional is not among security",)


def test_models_limit_the_scope() -> None:
    rule = licence(models=["aurora", "borealis"])
    assert scope_of(rule).applies
    other = scope_of(rule, model="comet")
    assert not other.applies
    assert other.release_mismatches == ("model comet is not among aurora, borealis",)


def test_regions_allowed_limit_the_scope() -> None:
    rule = licence(regions_excluded=[], regions_allowed=["DE", "FR"])
    assert scope_of(rule, region="fr").applies
    outside = scope_of(rule, region="US")
    assert not outside.applies
    assert outside.device_mismatches == ("region US is not among DE, FR",)


def test_regions_excluded_limit_the_scope() -> None:
    excluded = scope_of(licence(), region="KP")
    assert not excluded.applies
    assert excluded.device_mismatches == ("region KP is excluded",)


def test_deployed_before_is_exclusive() -> None:
    rule = licence()
    assert scope_of(rule, deployed_on=date(2018, 4, 14)).applies
    on_the_day = scope_of(rule, deployed_on=date(2018, 4, 15))
    assert not on_the_day.applies
    assert on_the_day.device_mismatches == ("deployed 2018-04-15, not before 2018-04-15",)


def test_deployed_on_or_after_is_inclusive() -> None:
    rule = licence(deployed_before=None, deployed_on_or_after="2018-04-15")
    assert scope_of(rule, deployed_on=date(2018, 4, 15)).applies
    earlier = scope_of(rule, deployed_on=date(2018, 4, 14))
    assert not earlier.applies
    assert earlier.device_mismatches == ("deployed 2018-04-14, before 2018-04-15",)


@pytest.mark.parametrize(
    ("facts", "unknown"),
    [
        ({"region": None}, "region unknown"),
        ({"deployed_on": None}, "deployment date unknown"),
    ],
)
def test_unknown_facts_fail_closed(facts: dict[str, Any], unknown: str) -> None:
    allow = scope_of(licence(), **facts)
    block = scope_of(licence(effect="block"), **facts)
    assert not allow.applies
    assert allow.unknowns == (unknown,)
    assert block.applies
    assert block.unknowns == (unknown,)


def test_a_rule_without_limits_covers_every_device_even_with_unknown_facts() -> None:
    rule = Rule(id="open", effect=Effect.ALLOW)
    assert scope_of(rule, region=None, deployed_on=None, model="x").applies


@pytest.mark.parametrize(
    ("changes", "sentence"),
    [
        (
            {},
            "rule L-2018-07 (priority 200) allows security updates to devices deployed before "
            "2018-04-15 outside KP from 2018-07-02 until 2018-08-01",
        ),
        (
            {
                "id": "denial-2018",
                "effect": "block",
                "priority": 100,
                "update_classes": [],
                "regions_excluded": [],
                "deployed_before": None,
                "valid_from": "2018-04-15",
                "valid_until": None,
            },
            "rule denial-2018 (priority 100) blocks all updates since 2018-04-15",
        ),
        (
            {
                "update_classes": ["functional", "security", "corrective"],
                "models": ["aurora"],
                "regions_allowed": ["FR", "DE"],
                "regions_excluded": [],
                "deployed_before": "2019-01-01",
                "deployed_on_or_after": "2018-01-01",
                "valid_from": None,
            },
            "rule L-2018-07 (priority 200) allows security, corrective and functional updates "
            "for model aurora to devices deployed on or after 2018-01-01 and before 2019-01-01 "
            "in DE, FR until 2018-08-01",
        ),
    ],
)
def test_describe_reads_as_one_sentence(changes: dict[str, Any], sentence: str) -> None:
    assert licence(**changes).describe() == sentence
