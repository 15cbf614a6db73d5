from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from patchline.errors import InvalidAmendmentError, InvalidRuleError
from patchline.policy import Amendment, Effect, Rule, rule_history, rule_on
from patchline.wire.release import UpdateClass

LICENCE = Rule(
    id="L-2018-07",
    effect=Effect.ALLOW,
    priority=200,
    update_classes=frozenset({UpdateClass.SECURITY, UpdateClass.CORRECTIVE}),
    valid_from=date(2018, 7, 2),
    valid_until=date(2018, 8, 1),
)


def amend(day: date, sequence: int = 0, **changes: Any) -> Amendment:
    return Amendment(rule_id="L-2018-07", effective_from=day, changes=changes, sequence=sequence)


def test_an_amendment_applies_from_its_effective_date_on() -> None:
    extension = amend(date(2018, 7, 30), valid_until="2018-08-15")
    assert rule_on(LICENCE, [extension], date(2018, 7, 29)).valid_until == date(2018, 8, 1)
    assert rule_on(LICENCE, [extension], date(2018, 7, 30)).valid_until == date(2018, 8, 15)


def test_amendments_apply_in_date_order_then_sequence_whatever_order_they_come_in() -> None:
    first = amend(date(2018, 7, 30), sequence=1, valid_until="2018-08-15")
    second = amend(date(2018, 7, 30), sequence=2, valid_until="2018-09-01")
    narrowing = amend(date(2018, 8, 10), update_classes=["security"])
    rule = rule_on(LICENCE, [narrowing, second, first], date(2018, 8, 10))
    assert rule.valid_until == date(2018, 9, 1)
    assert rule.update_classes == frozenset({UpdateClass.SECURITY})


def test_history_is_never_rewritten_and_the_original_is_unchanged() -> None:
    narrowing = amend(date(2018, 7, 20), update_classes=["security"])
    assert rule_on(LICENCE, [narrowing], date(2018, 7, 10)) == LICENCE
    assert LICENCE.update_classes == frozenset({UpdateClass.SECURITY, UpdateClass.CORRECTIVE})


def test_amendments_of_other_rules_are_ignored() -> None:
    other = Amendment(rule_id="normal", effective_from=date(2018, 1, 1), changes={"priority": 5})
    assert rule_on(LICENCE, [other], date(2018, 7, 10)) == LICENCE


def test_rule_history_lists_every_version_oldest_first() -> None:
    extension = amend(date(2018, 7, 30), valid_until="2018-08-15")
    narrowing = amend(date(2018, 8, 10), update_classes=["security"])
    history = rule_history(LICENCE, [narrowing, extension])
    assert [v.effective_from for v in history] == [None, date(2018, 7, 30), date(2018, 8, 10)]
    assert history[0].rule == LICENCE
    assert history[1].amendment == extension
    assert history[2].rule.valid_until == date(2018, 8, 15)
    assert history[2].rule.update_classes == frozenset({UpdateClass.SECURITY})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": "L-2018-08"}, "cannot change a rule's id"),
        ({"valid_untill": "2018-08-15"}, "field 'valid_untill' is not a rule field"),
        ({"valid_until": "August 15th"}, "field 'valid_until' 'August 15th' is not a date"),
        ({"update_classes": ["feature"]}, "field 'update_classes' 'feature' is not an update"),
        ({"effect": "maybe"}, "field 'effect' 'maybe' is not 'allow' or 'block'"),
        ({}, "changes must be a non-empty object"),
    ],
)
def test_a_malformed_amendment_is_refused_on_construction(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidAmendmentError) as caught:
        amend(date(2018, 7, 30), **changes)
    assert message in caught.value.message
    assert caught.value.message.startswith("amendment of rule L-2018-07")


def test_an_amendment_that_leaves_the_rule_invalid_is_refused_when_applied() -> None:
    too_early = amend(date(2018, 7, 10), valid_until="2018-07-01")
    with pytest.raises(InvalidAmendmentError, match="leaves it invalid") as caught:
        rule_on(LICENCE, [too_early], date(2018, 7, 10))
    assert "field 'valid_until'" in caught.value.message
    assert isinstance(caught.value, InvalidRuleError)
    with pytest.raises(InvalidAmendmentError):
        rule_history(LICENCE, [too_early])


def test_a_broken_future_amendment_does_not_change_the_rule_before_it_takes_effect() -> None:
    too_early = amend(date(2018, 7, 10), valid_until="2018-07-01")
    assert rule_on(LICENCE, [too_early], date(2018, 7, 9)) == LICENCE


def test_an_amendment_for_another_rule_cannot_be_applied_to_this_one() -> None:
    other = Amendment(rule_id="normal", effective_from=date(2018, 1, 1), changes={"priority": 5})
    with pytest.raises(InvalidAmendmentError, match="cannot be applied to rule L-2018-07"):
        other.apply_to(LICENCE)


def test_amendment_json_round_trips_with_changes_in_json_form() -> None:
    amendment = Amendment(
        rule_id="L-2018-07",
        effective_from=date(2018, 7, 30),
        changes={"valid_until": date(2018, 8, 15), "regions_excluded": ["kp"]},
        note="extended",
        sequence=7,
    )
    data = amendment.to_json()
    assert data == {
        "rule_id": "L-2018-07",
        "effective_from": "2018-07-30",
        "changes": {"valid_until": "2018-08-15", "regions_excluded": ["KP"]},
        "note": "extended",
        "sequence": 7,
        "recorded_at": None,
        "backdated": False,
        "reason": "",
    }
    assert Amendment.from_json(data) == amendment


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rule_id": "L-2018-07", "changes": {"priority": 1}}, "'effective_from' is required"),
        (
            {"rule_id": "L-2018-07", "effective_from": "2018-13-01", "changes": {"priority": 1}},
            "field 'effective_from'",
        ),
        (
            {"rule_id": "bad id", "effective_from": "2018-07-01", "changes": {"priority": 1}},
            "rule_id 'bad id' is not a rule id",
        ),
        (
            {
                "rule_id": "L-2018-07",
                "effective_from": "2018-07-01",
                "changes": {"priority": 1},
                "author": "x",
            },
            "field 'author' is not known",
        ),
    ],
)
def test_malformed_amendment_json_is_refused_with_the_field_named(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidAmendmentError) as caught:
        Amendment.from_json(data)
    assert message in caught.value.message
