from __future__ import annotations

import json
from datetime import date

from patchline.policy import Action, Amendment, Effect, Rule, decide, explain
from patchline.wire.release import Eligibility, UpdateClass
from tests.policy.policy_factories import RUNNING_SHA, delta, device, release

DAY = date(2018, 7, 10)
DENIAL = Rule(id="denial-2018", effect=Effect.BLOCK, priority=100, valid_from=date(2018, 4, 15))
LICENCE = Rule(
    id="L-2018-07",
    effect=Effect.ALLOW,
    priority=200,
    update_classes=frozenset({UpdateClass.SECURITY}),
    valid_from=date(2018, 7, 2),
    valid_until=date(2018, 8, 1),
)
EXTENSION = Amendment(
    rule_id="L-2018-07", effective_from=date(2018, 7, 30), changes={"valid_until": "2018-08-15"}
)
RELEASES = [
    release("1.3", "functional"),
    release("1.2", "security", deltas=(delta("1.2", "1.0", RUNNING_SHA),)),
    release("1.1", "security"),
    release("0.9", "security"),
    release("1.4", "security", security_patch_level=date(2018, 1, 1)),
    release("1.5", "security", eligibility=Eligibility(regions_allowed=("US",))),
]


def test_the_explanation_carries_exactly_the_decision_decide_gives() -> None:
    explanation = explain(device(), RELEASES, [DENIAL, LICENCE], [EXTENSION], DAY)
    assert explanation.decision == decide(device(), RELEASES, [DENIAL, LICENCE], [EXTENSION], DAY)
    assert explanation.decision.action is Action.INSTALL


def test_every_candidate_is_assessed_newest_first_even_past_the_offer() -> None:
    explanation = explain(device(), RELEASES, [DENIAL, LICENCE], [], DAY)
    assert [(a.release.build, a.allowed) for a in explanation.candidates] == [
        ("1.5", False),
        ("1.3", False),
        ("1.2", True),
        ("1.1", True),
    ]


def test_each_candidate_shows_the_checks_that_decided_it() -> None:
    data = explain(device(), RELEASES, [DENIAL, LICENCE], [], DAY).to_json()
    fenced, functional, offered, older = data["candidates"]
    assert fenced["eligibility"] == {"passed": False, "refusals": ["region DE is not among US"]}
    assert functional["deciding_rule"] == "denial-2018"
    assert functional["refusal"] == (
        "rule denial-2018 (priority 100) blocks all updates since 2018-04-15; rule L-2018-07 "
        "(priority 200), which would override it, covers only security updates"
    )
    roles = {rule["rule_id"]: rule["role"] for rule in functional["rules"]}
    assert roles == {"L-2018-07": "out-of-scope", "denial-2018": "decided"}
    assert offered["offered"] is True
    assert older["offered"] is False
    assert {rule["rule_id"]: rule["role"] for rule in offered["rules"]} == {
        "L-2018-07": "decided",
        "denial-2018": "overridden",
    }
    assert offered["delivery"]["is_delta"] is True
    assert [check["name"] for check in offered["phone_checks"]] == [
        "free-space",
        "battery",
        "network",
    ]
    assert all(check["passed"] for check in offered["phone_checks"])


def test_releases_passed_over_say_why() -> None:
    data = explain(device(), RELEASES, [DENIAL, LICENCE], [], DAY).to_json()
    passed = {p["build"]: p for p in data["passed_over"]}
    assert passed["1.4"]["newer"] is True
    assert "security patch level 2018-01-01 is older" in passed["1.4"]["reason"]
    assert passed["0.9"]["reason"] == "build 0.9 is not newer than 1.0"


def test_rules_show_their_state_and_amendments_applied_and_pending() -> None:
    before = explain(device(), RELEASES, [DENIAL, LICENCE], [EXTENSION], DAY).to_json()
    after = explain(device(), RELEASES, [DENIAL, LICENCE], [EXTENSION], date(2018, 8, 5))
    licence_before = before["rules"][1]
    assert licence_before["rule_id"] == "L-2018-07"
    assert licence_before["status"] == "in-force"
    assert licence_before["rule"]["valid_until"] == "2018-08-01"
    assert licence_before["amendments_applied"] == []
    assert licence_before["amendments_pending"] == [EXTENSION.to_json()]
    licence_after = after.rules[1]
    assert licence_after.rule.valid_until == date(2018, 8, 15)
    assert licence_after.applied == (EXTENSION,)
    assert licence_after.pending == ()


def test_the_what_if_answer_for_a_day_after_the_lapse_names_it() -> None:
    explanation = explain(device(), RELEASES, [DENIAL, LICENCE], [], date(2018, 8, 1))
    assert explanation.decision.action is Action.NONE
    assert "rule L-2018-07 lapsed on 2018-08-01" in explanation.decision.reasons
    assert explanation.rules[1].status_sentence == "rule L-2018-07 lapsed on 2018-08-01"


def test_the_explanation_is_plain_json() -> None:
    data = explain(device(), RELEASES, [DENIAL, LICENCE], [EXTENSION], DAY).to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["day"] == "2018-07-10"
    assert data["device"]["device_id"] == "dev-1"
