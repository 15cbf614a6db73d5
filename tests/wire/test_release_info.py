from datetime import UTC, date, datetime

import pytest

from patchline.wire.release import (
    AmendmentRef,
    Eligibility,
    InvalidReleaseInfo,
    ReleaseInfo,
    UpdateClass,
    parse_regions,
)


def make_info(**changes: object) -> ReleaseInfo:
    values: dict[str, object] = {
        "model": "alpha",
        "build": "1.2",
        "build_time": datetime(2018, 7, 2, 10, 0, tzinfo=UTC),
        "security_patch_level": date(2018, 7, 1),
        "update_class": UpdateClass.SECURITY,
        "eligibility": Eligibility(
            regions_excluded=("KP",),
            deployed_before=date(2018, 4, 15),
            valid_until=date(2018, 8, 1),
            rule="L-2018-07",
        ),
        "notes": "July security patch",
    }
    values.update(changes)
    return ReleaseInfo(**values)  # type: ignore[arg-type]


def test_custom_fields_round_trip() -> None:
    info = make_info()
    assert ReleaseInfo.from_custom(info.to_custom()) == info


def test_custom_fields_name_their_format() -> None:
    custom = make_info().to_custom()
    assert custom["format"] == "patchline.release/1"
    assert custom["eligibility"]["deployed_before"] == "2018-04-15"
    assert custom["eligibility"]["rule"] == "L-2018-07"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("format", "other/1"),
        ("update_class", "cosmetic"),
        ("security_patch_level", "July"),
        ("model", 7),
        ("eligibility", {"regions_allowed": "DE"}),
        ("eligibility", {"rule": "not a name"}),
    ],
)
def test_malformed_custom_fields_are_rejected(field: str, value: object) -> None:
    custom = make_info().to_custom()
    custom[field] = value
    with pytest.raises(InvalidReleaseInfo):
        ReleaseInfo.from_custom(custom)


def test_bad_names_are_rejected() -> None:
    with pytest.raises(InvalidReleaseInfo, match="model"):
        make_info(model="../etc")
    with pytest.raises(InvalidReleaseInfo, match="build"):
        make_info(build="1 2")


def test_eligibility_allows_a_device_inside_every_limit() -> None:
    rules = make_info().eligibility
    assert rules.refusals(region="DE", deployed_on=date(2018, 4, 14), today=date(2018, 7, 31)) == []


def test_eligibility_dates_are_exclusive() -> None:
    rules = make_info().eligibility
    late = rules.refusals(region="DE", deployed_on=date(2018, 4, 15), today=date(2018, 7, 2))
    assert late == ["deployed 2018-04-15, not before 2018-04-15"]
    lapsed = rules.refusals(region="DE", deployed_on=date(2018, 1, 1), today=date(2018, 8, 1))
    assert lapsed == ["release validity ended on 2018-08-01"]


def test_eligibility_regions() -> None:
    excluded = make_info().eligibility.refusals(
        region="kp", deployed_on=date(2018, 1, 1), today=date(2018, 7, 2)
    )
    assert excluded == ["region KP is excluded"]
    only_eu = Eligibility(regions_allowed=("DE", "FR"))
    assert only_eu.refusals(region="US", deployed_on=None, today=date(2018, 1, 1)) == [
        "region US is not among DE, FR"
    ]
    assert only_eu.refusals(region=None, deployed_on=None, today=date(2018, 1, 1)) == [
        "region unknown is not among DE, FR"
    ]


def test_unknown_deployment_date_is_refused_when_rule_needs_it() -> None:
    reasons = make_info().eligibility.refusals(
        region="DE", deployed_on=None, today=date(2018, 7, 2)
    )
    assert reasons[0].startswith("deployment date unknown")


def test_regions_are_normalised_and_checked() -> None:
    assert parse_regions(["de, fr", "EU"]) == ("DE", "EU", "FR")
    with pytest.raises(InvalidReleaseInfo):
        parse_regions(["D E"])
    with pytest.raises(InvalidReleaseInfo, match="both allowed and excluded"):
        Eligibility(regions_allowed=("DE",), regions_excluded=("DE",))


def test_delta_custom_fields_round_trip() -> None:
    from patchline.wire.release import DeltaTargetInfo, delta_target_path

    info = DeltaTargetInfo(
        model="alpha",
        build="1.2",
        source_build="1.1",
        source_sha256="a" * 64,
        full_target="alpha/1.2/alpha-1.2.img",
        full_sha256="b" * 64,
        full_length=10,
    )
    assert DeltaTargetInfo.from_custom(info.to_custom()) == info
    assert delta_target_path("alpha", "1.2", "1.1") == "alpha/1.2/delta-from-1.1.patch"
    with pytest.raises(InvalidReleaseInfo):
        ReleaseInfo.from_custom(info.to_custom())
    with pytest.raises(InvalidReleaseInfo, match="sha256"):
        DeltaTargetInfo(**{**info.__dict__, "source_sha256": "xyz"})


def test_intersecting_eligibility_keeps_what_both_allow_and_names_the_narrower_rule() -> None:
    signed = Eligibility(rule="normal")
    licence = Eligibility(
        regions_excluded=("KP",),
        deployed_before=date(2018, 4, 15),
        valid_until=date(2018, 8, 1),
        rule="L-2018-07",
    )
    assert signed.intersect(licence) == licence
    assert licence.intersect(Eligibility(rule="normal")) == licence
    narrower = Eligibility(regions_allowed=("DE", "FR"), valid_until=date(2018, 7, 1))
    assert licence.intersect(narrower) == Eligibility(
        regions_allowed=("DE", "FR"),
        regions_excluded=("KP",),
        deployed_before=date(2018, 4, 15),
        valid_until=date(2018, 7, 1),
        rule="L-2018-07",
    )


def test_intersecting_eligibility_that_leaves_no_region_gives_none() -> None:
    assert (
        Eligibility(regions_allowed=("DE",)).intersect(Eligibility(regions_allowed=("FR",))) is None
    )
    assert (
        Eligibility(regions_allowed=("KP",)).intersect(Eligibility(regions_excluded=("KP",)))
        is None
    )
    both = Eligibility(regions_allowed=("DE", "KP")).intersect(
        Eligibility(regions_excluded=("KP",))
    )
    assert both == Eligibility(regions_allowed=("DE",), regions_excluded=("KP",))


def test_an_amendment_is_signed_only_when_named_and_read_back() -> None:
    plain = Eligibility(valid_until=date(2018, 8, 1), rule="L-2018-07")
    assert "amendment" not in plain.to_json()  # releases signed before keep their bytes
    named = Eligibility(
        valid_until=date(2018, 9, 1),
        rule="L-2018-07",
        amendment=AmendmentRef(id=2, effective_from=date(2018, 7, 20)),
    )
    assert named.to_json()["amendment"] == {"id": 2, "effective_from": "2018-07-20"}
    assert Eligibility.from_json(named.to_json()) == named
    assert named.change_from(plain) == "widened"
    assert plain.change_from(named) == "narrowed"
    with pytest.raises(InvalidReleaseInfo, match="must name its rule"):
        Eligibility(amendment=AmendmentRef(id=2, effective_from=date(2018, 7, 20)))
    with pytest.raises(InvalidReleaseInfo, match=r"amendment\.id"):
        Eligibility.from_json({**named.to_json(), "amendment": {"id": "2"}})
