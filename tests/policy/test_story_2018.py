"""The 2018 story on simulated dates: normal service, a ban, a narrow licence, its lapse.

Rules: "normal" allows everything until the ban; "denial-2018" blocks everything from
the ban on; "L-2018-07" allows security updates only, to devices deployed before the
ban, outside KP, from 2018-07-02 until 2018-08-01 (a second variant extends it).
"""

from __future__ import annotations

from datetime import date

import pytest

from patchline.policy import Action, Amendment, Decision, DeviceFacts, Effect, Rule, decide
from patchline.wire.release import UpdateClass
from tests.policy.policy_factories import device, release

BAN = date(2018, 4, 15)

NORMAL = Rule(
    id="normal", title="Normal service", effect=Effect.ALLOW, priority=10, valid_until=BAN
)
DENIAL = Rule(
    id="denial-2018", title="Denial order", effect=Effect.BLOCK, priority=100, valid_from=BAN
)
LICENCE = Rule(
    id="L-2018-07",
    title="Temporary general licence",
    effect=Effect.ALLOW,
    priority=200,
    update_classes=frozenset({UpdateClass.SECURITY}),
    deployed_before=BAN,
    regions_excluded=frozenset({"KP"}),
    valid_from=date(2018, 7, 2),
    valid_until=date(2018, 8, 1),
)
RULES = (NORMAL, DENIAL, LICENCE)
EXTENSION = Amendment(
    rule_id="L-2018-07",
    effective_from=date(2018, 7, 30),
    changes={"valid_until": "2018-08-15"},
    note="licence extended to 15 August",
    sequence=3,
)

JULY_PATCH = date(2018, 7, 5)
RELEASES = (
    release("1.1", "security"),
    release("1.2", "corrective"),
    release("1.3", "functional"),
    release("1.4", "security", security_patch_level=JULY_PATCH),
    release("1.5", "corrective", security_patch_level=JULY_PATCH),
    release("1.6", "functional", security_patch_level=JULY_PATCH),
)

OLD_DE = device(device_id="old-de", region="DE", deployed_on=date(2017, 6, 1))
OLD_KP = device(device_id="old-kp", region="KP", deployed_on=date(2017, 6, 1))
NEW_DE = device(device_id="new-de", region="DE", deployed_on=date(2018, 5, 1))

LICENCE_SENTENCE = (
    "rule L-2018-07 (priority 200) allows security updates to devices deployed before "
    "2018-04-15 outside KP from 2018-07-02 until 2018-08-01"
)
DENIAL_SENTENCE = "rule denial-2018 (priority 100) blocks all updates since 2018-04-15"
OVERRIDING = "rule L-2018-07 (priority 200), which would override it,"
CLASS_NARROWING = f"{DENIAL_SENTENCE}; {OVERRIDING} covers only security updates"
ALL_BUILDS = (
    "builds 1.6 (functional), 1.5 (corrective), 1.4 (security), 1.3 (functional), "
    "1.2 (corrective) and 1.1 (security)"
)


def on(day: date, dev: DeviceFacts = OLD_DE, amendments: tuple[Amendment, ...] = ()) -> Decision:
    return decide(dev, RELEASES, RULES, amendments, day)


@pytest.mark.parametrize("dev", [OLD_DE, OLD_KP])
def test_before_the_ban_the_newest_update_of_any_class_flows(dev: DeviceFacts) -> None:
    decision = on(date(2018, 4, 14), dev)
    assert decision.action is Action.INSTALL
    assert decision.release is not None
    assert decision.release.build == "1.6"
    assert decision.reasons[:2] == (
        "install build 1.6 (functional update) as the full image",
        "rule normal (priority 10) allows all updates until 2018-04-15",
    )
    assert "rule denial-2018 is not yet in force; it starts on 2018-04-15" in decision.reasons
    assert decision.rule_ids == ("denial-2018", "normal")


@pytest.mark.parametrize("day", [BAN, date(2018, 5, 20), date(2018, 7, 1)])
def test_during_the_ban_nothing_is_offered_and_denial_2018_is_named(day: date) -> None:
    decision = on(day)
    assert decision.action is Action.NONE
    assert decision.release is None
    assert decision.target_path is None
    assert decision.reasons[0] == "no update is offered to build 1.0 of model aurora"
    assert f"{ALL_BUILDS} are not offered: {DENIAL_SENTENCE}" in decision.reasons
    assert "rule normal lapsed on 2018-04-15" in decision.reasons
    assert "rule L-2018-07 is not yet in force; it starts on 2018-07-02" in decision.reasons
    assert decision.rule_ids == ("L-2018-07", "denial-2018", "normal")


@pytest.mark.parametrize("day", [date(2018, 7, 2), date(2018, 7, 15), date(2018, 7, 31)])
def test_inside_the_licence_window_only_security_updates_reach_old_devices(day: date) -> None:
    decision = on(day)
    assert decision.action is Action.INSTALL
    assert decision.release is not None
    assert decision.release.build == "1.4"
    assert decision.release.update_class is UpdateClass.SECURITY
    assert decision.reasons[:3] == (
        "install build 1.4 (security update) as the full image",
        LICENCE_SENTENCE,
        f"overridden: {DENIAL_SENTENCE}",
    )
    assert decision.reasons[4] == (
        f"builds 1.6 (functional) and 1.5 (corrective) are not offered: {CLASS_NARROWING}"
    )
    assert not any("1.1" in reason for reason in decision.reasons)


def test_inside_the_window_a_device_on_the_latest_security_build_gets_nothing() -> None:
    on_patch = device(build="1.4", security_patch_level=JULY_PATCH)
    decision = decide(on_patch, RELEASES, RULES, (), date(2018, 7, 15))
    assert decision.action is Action.NONE
    assert decision.reasons == (
        "no update is offered to build 1.4 of model aurora",
        f"builds 1.6 (functional) and 1.5 (corrective) are not offered: {CLASS_NARROWING}",
        "rule normal lapsed on 2018-04-15",
    )


def test_inside_the_window_devices_deployed_after_the_ban_get_nothing() -> None:
    decision = on(date(2018, 7, 15), NEW_DE)
    assert decision.action is Action.NONE
    # The licence's cutoff keeps the builds out, not only the ban under it.
    assert (
        f"{ALL_BUILDS} are not offered: {DENIAL_SENTENCE}; {OVERRIDING} does not cover this "
        "device: deployed 2018-05-01, not before 2018-04-15"
    ) in decision.reasons


def test_inside_the_window_the_excluded_region_gets_nothing() -> None:
    decision = on(date(2018, 7, 15), OLD_KP)
    assert decision.action is Action.NONE
    assert (
        f"{ALL_BUILDS} are not offered: {DENIAL_SENTENCE}; {OVERRIDING} does not cover this "
        "device: region KP is excluded"
    ) in decision.reasons


def test_inside_the_window_an_unknown_deployment_date_is_not_licensed() -> None:
    unknown = device(deployed_on=None)
    decision = decide(unknown, RELEASES, RULES, (), date(2018, 7, 15))
    assert decision.action is Action.NONE
    assert any(
        r.endswith(f"{OVERRIDING} does not cover this device: deployment date unknown")
        for r in decision.reasons
    )


@pytest.mark.parametrize("day", [date(2018, 8, 1), date(2018, 9, 1)])
def test_after_the_window_nothing_and_the_reason_names_the_lapse(day: date) -> None:
    decision = on(day)
    assert decision.action is Action.NONE
    assert "rule L-2018-07 lapsed on 2018-08-01" in decision.reasons
    assert f"{ALL_BUILDS} are not offered: {DENIAL_SENTENCE}" in decision.reasons
    assert "L-2018-07" in decision.rule_ids


def test_an_extension_keeps_security_updates_flowing_past_the_first_end_date() -> None:
    decision = on(date(2018, 8, 5), amendments=(EXTENSION,))
    assert decision.action is Action.INSTALL
    assert decision.release is not None
    assert decision.release.build == "1.4"
    assert decision.reasons[1] == LICENCE_SENTENCE.replace("2018-08-01", "2018-08-15")


def test_before_the_extension_takes_effect_the_licence_reads_as_first_written() -> None:
    decision = on(date(2018, 7, 29), amendments=(EXTENSION,))
    assert decision.action is Action.INSTALL
    assert decision.reasons[1] == LICENCE_SENTENCE


def test_the_extended_licence_lapses_on_its_new_end_date() -> None:
    decision = on(date(2018, 8, 15), amendments=(EXTENSION,))
    assert decision.action is Action.NONE
    assert "rule L-2018-07 lapsed on 2018-08-15 (amendment 3 of 2018-07-30)" in decision.reasons


def test_a_later_narrowing_removes_a_region_from_the_extended_licence() -> None:
    narrowing = Amendment(
        rule_id="L-2018-07",
        effective_from=date(2018, 8, 10),
        changes={"regions_excluded": ["KP", "DE"]},
    )
    before = on(date(2018, 8, 9), amendments=(narrowing, EXTENSION))
    after = on(date(2018, 8, 10), amendments=(narrowing, EXTENSION))
    assert before.action is Action.INSTALL
    assert after.action is Action.NONE
    assert any(
        r.endswith(
            f"{OVERRIDING} does not cover this device: region DE is excluded "
            "(as narrowed by the amendment of 2018-08-10)"
        )
        for r in after.reasons
    )
