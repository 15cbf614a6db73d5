"""Re-signing published releases under tighter rules: devices see the new limits."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from patchline.policy import Amendment, Effect, Rule
from patchline.policy.authorise import eligibility_resigned, eligibility_under_rules
from patchline.repository import Repository
from patchline.repository.releases import releases_of
from patchline.repository.restrict import restrict_releases
from patchline.wire.release import AmendmentRef, Eligibility, ReleaseInfo, UpdateClass
from tests.conftest import publish

BAN = date(2018, 4, 15)
RULES = (
    Rule(id="normal", effect=Effect.ALLOW, priority=10),
    Rule(id="denial", effect=Effect.BLOCK, priority=100, valid_from=BAN),
    Rule(
        id="licence",
        effect=Effect.ALLOW,
        priority=200,
        update_classes=["security"],
        deployed_before=BAN,
        regions_excluded=["KP"],
        valid_from=date(2018, 7, 2),
        valid_until=date(2018, 8, 1),
    ),
)


def _tree_digest(public: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(public.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(public)).encode() + path.read_bytes())
    return digest.hexdigest()


def _under(day: date) -> Callable[[ReleaseInfo], Eligibility]:
    return lambda info: eligibility_under_rules(info, rules=RULES, day=day)


def test_a_ban_lapses_every_signed_release_and_images_stay_where_they_are(repo: Repository) -> None:
    publish(repo, "alpha", "1.0")
    publish(repo, "alpha", "1.1", update_class=UpdateClass.FUNCTIONAL)
    images = sorted(p.name for p in repo.layout.targets_dir.rglob("*") if p.is_file())

    changed = restrict_releases(repo, _under(BAN))

    assert {c.build for c in changed} == {"1.0", "1.1"}
    for release in releases_of(repo.state(), "alpha"):
        assert release.info.eligibility.valid_until == BAN
        assert release.info.eligibility.rule == ""
    assert sorted(p.name for p in repo.layout.targets_dir.rglob("*") if p.is_file()) == images


def test_the_licence_narrows_a_security_release_and_names_itself(repo: Repository) -> None:
    publish(repo, "alpha", "1.0")
    changed = restrict_releases(repo, _under(date(2018, 7, 2)))
    [release] = releases_of(repo.state(), "alpha")
    assert [c.build for c in changed] == ["1.0"]
    assert release.info.eligibility == Eligibility(
        regions_excluded=("KP",),
        deployed_before=BAN,
        valid_until=date(2018, 8, 1),
        rule="licence",
    )


def test_nothing_changes_nothing_is_published(repo: Repository) -> None:
    publish(repo, "alpha", "1.0")
    assert len(restrict_releases(repo, _under(date(2018, 3, 1)))) == 1  # the ban ahead
    before = _tree_digest(repo.layout.public_dir)
    assert restrict_releases(repo, _under(date(2018, 3, 2))) == []
    assert _tree_digest(repo.layout.public_dir) == before


def test_rules_never_widen_a_signed_release() -> None:
    narrow = Eligibility(regions_allowed=("DE",), valid_until=date(2018, 5, 1), rule="old")
    info = ReleaseInfo(
        model="alpha",
        build="1.0",
        build_time=datetime(2018, 1, 1, tzinfo=UTC),
        security_patch_level=date(2018, 1, 5),
        update_class=UpdateClass.SECURITY,
        eligibility=narrow,
    )
    assert eligibility_under_rules(info, rules=RULES[:1], day=date(2018, 3, 1)) == narrow


def _signed(eligibility: Eligibility) -> ReleaseInfo:
    return ReleaseInfo(
        model="alpha",
        build="1.0",
        build_time=datetime(2018, 1, 1, tzinfo=UTC),
        security_patch_level=date(2018, 1, 5),
        update_class=UpdateClass.SECURITY,
        eligibility=eligibility,
    )


UNDER_LICENCE = Eligibility(
    regions_excluded=("KP",), deployed_before=BAN, valid_until=date(2018, 8, 1), rule="licence"
)
EXTENSION = Amendment(
    rule_id="licence",
    effective_from=date(2018, 7, 20),
    changes={"valid_until": "2018-09-01"},
    sequence=7,
)


def test_an_amendment_extending_the_licence_widens_a_release_and_is_named() -> None:
    resigned = eligibility_resigned(
        _signed(UNDER_LICENCE), rules=RULES, amendments=[EXTENSION], day=date(2018, 7, 25)
    )
    assert resigned == replace(
        UNDER_LICENCE,
        valid_until=date(2018, 9, 1),
        amendment=AmendmentRef(id=7, effective_from=date(2018, 7, 20)),
    )
    assert resigned.change_from(UNDER_LICENCE) == "widened"


def test_no_widening_without_an_amendment_nor_before_it_takes_effect() -> None:
    info = _signed(UNDER_LICENCE)
    assert eligibility_resigned(info, rules=RULES, day=date(2018, 7, 25)) == UNDER_LICENCE
    early = eligibility_resigned(info, rules=RULES, amendments=[EXTENSION], day=date(2018, 7, 10))
    assert early == UNDER_LICENCE


def test_a_publishers_own_limit_and_a_release_without_a_rule_are_never_widened() -> None:
    own = replace(UNDER_LICENCE, valid_until=date(2018, 7, 28))
    assert (
        eligibility_resigned(
            _signed(own), rules=RULES, amendments=[EXTENSION], day=date(2018, 7, 25)
        )
        == own
    )
    unnamed = replace(UNDER_LICENCE, rule="")
    assert (
        eligibility_resigned(
            _signed(unnamed), rules=RULES, amendments=[EXTENSION], day=date(2018, 7, 25)
        )
        == unnamed
    )


def test_a_widening_stops_where_a_ban_ahead_begins() -> None:
    ban = Rule(id="second-ban", effect=Effect.BLOCK, priority=300, valid_from=date(2018, 8, 20))
    resigned = eligibility_resigned(
        _signed(UNDER_LICENCE),
        rules=(*RULES, ban),
        amendments=[EXTENSION],
        day=date(2018, 7, 25),
    )
    assert resigned.valid_until == date(2018, 8, 20)
    assert resigned.amendment == AmendmentRef(id=7, effective_from=date(2018, 7, 20))
