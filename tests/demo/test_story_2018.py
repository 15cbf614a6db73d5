"""The 2018 story end to end: 1,000 phones running the real agent on simulated time.

The maker's server directs the March update; its servers go dark and mirrors and SD
cards carry the April one; the denial order stops everything and a successor takes
over signing; the licence lets only the July security build through, only to phones
deployed before the ban, outside KP; it lapses. The counts below are derived from
the fleet's inputs (who is online on which day, which cards arrive), not from the run.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from patchline.demo.story.fleet import FleetShape, connected
from patchline.demo.story.report import Install, PhaseReport, StoryReport
from patchline.demo.story.story import BAN, PHASES, CardPlan, Phase, run_story
from patchline.repository.passphrases import PassphraseSource
from patchline.settings import Settings
from tests.server.conftest import free_port

pytestmark = pytest.mark.long  # minutes: `make test-long`

SHAPE = FleetShape(size=1000)
CARDS = CardPlan()


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> StoryReport:
    workdir = tmp_path_factory.mktemp("story") / "run"
    return run_story(
        workdir,
        port=free_port(),
        say=lambda line: None,
        settings=Settings(kdf_log2n=10),
        passphrases=PassphraseSource({"PATCHLINE_PASSPHRASE": "story"}, interactive=False),
        shape=SHAPE,
    )


def _phones(story: StoryReport, **facts: Any) -> list[dict[str, Any]]:
    return [p for p in story.phones if all(p[k] == v for k, v in facts.items())]


def _index(phone: dict[str, Any]) -> int:
    return int(phone["name"].removeprefix("phone-"))


def _connected_during(phone: dict[str, Any], phase: Phase) -> bool:
    days = (phase.start + timedelta(days=d) for d in range(phase.days))
    return any(connected(SHAPE, _index(phone), day) for day in days)


def _by_source(phase: PhaseReport) -> Counter[str]:
    return Counter(i.source for i in phase.installs)


def _sold_before_ban(phone: dict[str, Any]) -> bool:
    return date.fromisoformat(phone["deployed_on"]) < BAN


def _inserted_cards(offline: int) -> int:
    """Cards inserted in a phase: all but the owners who never insert theirs."""
    return offline - round(offline * CARDS.never)


def test_not_one_install_falls_outside_the_rules_in_force(story: StoryReport) -> None:
    installs: list[Install] = [i for p in story.phases for i in p.installs]
    assert installs
    assert story.out_of_scope == []
    # The rule an independent reading of the rules names is the one signed in the release.
    assert all(i.allowed_by == i.rule for i in installs)


def test_normal_service_the_maker_directs_online_phones_and_cards_reach_the_rest(
    story: StoryReport,
) -> None:
    phase = story.phase("normal")
    online = [p for p in _phones(story, link="online") if _sold_before_ban(p)]
    offline = [p for p in _phones(story, link="offline") if _sold_before_ban(p)]
    reached = [p for p in online if _connected_during(p, PHASES[0])]
    assert {(i.build, i.rule) for i in phase.installs} == {("1.1", "normal")}
    assert _by_source(phase) == {"server": len(reached), "bundle": _inserted_cards(len(offline))}
    damaged = round(len(offline) * CARDS.damaged)
    refused = sum(n for (_, msg), n in phase.problems.items() if "(tampered image)" in msg)
    assert refused == damaged


def test_with_the_servers_dark_mirrors_and_cards_deliver_the_april_build(
    story: StoryReport,
) -> None:
    phase = story.phase("dark")
    online = [p for p in _phones(story, link="online") if _sold_before_ban(p)]
    offline = [p for p in _phones(story, link="offline") if _sold_before_ban(p)]
    reached = [p for p in online if _connected_during(p, PHASES[1])]
    assert "the maker's update server is gone for good" in phase.events
    assert {(i.build, i.rule) for i in phase.installs} == {("1.2", "normal")}
    assert _by_source(phase) == {"mirror": len(reached), "bundle": _inserted_cards(len(offline))}


def test_under_the_denial_order_nothing_is_signed_or_installed(story: StoryReport) -> None:
    phase = story.phase("ban")
    assert phase.installs == []
    assert phase.runs > 0
    # A phone that missed the April build is told it lapsed; every other one is up to date.
    assert all("release validity ended on 2018-04-15" in m for _, m in phase.problems)
    assert phase.up_to_date + sum(phase.problems.values()) == phase.runs
    assert any("successor carrier takes over signing" in e for e in phase.events)
    assert any("lapse on 2018-04-15" in e for e in phase.events)
    refused = [line for line in phase.signing if "may not sign" in line and "1.3" in line]
    assert len(refused) == 2
    assert all("rule denial-2018 (priority 100) blocks all updates" in r for r in refused)


def test_the_licence_lets_only_the_security_build_through_to_phones_sold_before_the_ban(
    story: StoryReport,
) -> None:
    phase = story.phase("licence")
    assert {(i.build, i.rule) for i in phase.installs} == {("1.4", "L-2018-07")}
    assert set(_by_source(phase)) == {"mirror", "bundle"}
    assert any("may not sign aurora 1.5 (functional)" in line for line in phase.signing)
    on_july = [p for p in story.phones if p["build"] == "1.4"]
    assert on_july
    assert all(_sold_before_ban(p) and p["region"] != "KP" for p in on_july)
    for phone in story.phones:
        eligible = _sold_before_ban(phone) and phone["region"] != "KP"
        if not eligible:
            assert phone["build"] != "1.4", phone
        elif (
            phone["link"] == "online" and not phone["away"] and _connected_during(phone, PHASES[3])
        ):
            assert phone["build"] == "1.4", phone


def test_reach_targets_are_met_in_the_licences_first_seven_days(story: StoryReport) -> None:
    targets = story.phase("licence").targets
    online_done, online_eligible = targets["online"]
    offline_done, offline_eligible = targets["offline"]
    assert online_eligible > 600
    assert offline_eligible > 100
    assert online_done / online_eligible >= 0.99
    assert offline_done / offline_eligible >= 0.95
    assert story.targets_met


def test_after_the_lapse_late_cards_and_returning_phones_are_refused(
    story: StoryReport,
) -> None:
    phase = story.phase("lapsed")
    assert phase.installs == []
    lapsed = {msg for (_, msg), _ in phase.problems.items()}
    assert any("SD card" in m and "release validity ended on 2018-08-01" in m for m in lapsed)
    assert any("Mirror" in m and "release validity ended on 2018-08-01" in m for m in lapsed)
    away = _phones(story, away=True)
    assert away
    assert all(p["build"] != "1.4" for p in away)


def test_every_offline_install_of_an_enrolled_phone_left_a_signed_receipt(
    story: StoryReport,
) -> None:
    enrolled = {p["name"] for p in _phones(story, link="offline") if _sold_before_ban(p)}
    from_cards = [
        i for p in story.phases for i in p.installs if i.source == "bundle" and i.phone in enrolled
    ]
    assert story.receipts_waiting == len(from_cards)


def test_the_report_is_json(story: StoryReport, tmp_path: Path) -> None:
    document = story.to_json()
    assert [p["key"] for p in document["phases"]] == [p.key for p in PHASES]
    assert document["out_of_scope"] == 0
    licence = document["phases"][3]
    assert {(i["build"], i["rule"]) for i in licence["installs"]} == {("1.4", "L-2018-07")}
