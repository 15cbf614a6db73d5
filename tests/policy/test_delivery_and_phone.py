from __future__ import annotations

from datetime import date

from patchline.policy import Action, decide
from tests.policy.policy_factories import RUNNING_SHA, allow_all, delta, device, release, sha

DAY = date(2018, 7, 10)


def test_the_delta_made_from_the_exact_build_and_image_is_offered() -> None:
    exact = delta("1.1", "1.0", RUNNING_SHA, length=40_000)
    other = delta("1.1", "0.9", sha("aurora 0.9"))
    target = release("1.1", deltas=(other, exact))
    decision = decide(device(), [target], [allow_all()], [], DAY)
    assert decision.action is Action.INSTALL
    assert decision.is_delta
    assert decision.target_path == exact.target_path
    assert decision.length == 40_000
    assert decision.sha256 == exact.sha256
    assert decision.full_target_path == target.target_path
    assert decision.reasons[0] == "install build 1.1 (security update) as a delta"
    assert "delta from build 1.0: 40000 bytes instead of 1000000" in decision.reasons


def test_a_delta_from_the_same_build_but_another_image_is_not_offered() -> None:
    wrong_image = delta("1.1", "1.0", sha("a rebuilt 1.0"))
    target = release("1.1", deltas=(wrong_image,))
    decision = decide(device(), [target], [allow_all()], [], DAY)
    assert not decision.is_delta
    assert decision.target_path == target.target_path
    assert decision.length == target.length
    assert decision.sha256 == target.sha256
    assert (
        "full image: the delta from build 1.0 was made from a different image than the one "
        "this device runs"
    ) in decision.reasons


def test_without_a_delta_for_the_running_build_the_full_image_is_offered() -> None:
    target = release("1.1", deltas=(delta("1.1", "0.9", sha("aurora 0.9")),))
    decision = decide(device(), [target], [allow_all()], [], DAY)
    assert not decision.is_delta
    assert decision.reasons[0] == "install build 1.1 (security update) as the full image"
    assert "full image: no delta from build 1.0" in decision.reasons


def test_free_space_is_checked_against_the_delta_when_one_applies() -> None:
    target = release("1.1", length=5_000_000, deltas=(delta("1.1", "1.0", RUNNING_SHA, 40_000),))
    decision = decide(device(free_bytes=100_000), [target], [allow_all()], [], DAY)
    assert decision.action is Action.INSTALL


def test_too_little_free_space_means_wait_not_an_older_build() -> None:
    releases = [release("1.2", length=5_000_000), release("1.1", length=10)]
    decision = decide(device(free_bytes=1_000), releases, [allow_all()], [], DAY)
    assert decision.action is Action.WAIT
    assert decision.release is not None
    assert decision.release.build == "1.2"
    assert decision.target_path == "aurora/1.2/aurora-1.2.img"
    assert decision.reasons[:2] == (
        "build 1.2 (security update) is allowed but cannot be installed now",
        "free space 1000 bytes is less than the 5000000 bytes the download needs",
    )


def test_free_space_equal_to_the_download_is_enough() -> None:
    decision = decide(device(free_bytes=1_000_000), [release("1.1")], [allow_all()], [], DAY)
    assert decision.action is Action.INSTALL


def test_a_low_battery_means_wait() -> None:
    target = release("1.1", min_battery_percent=20)
    low = decide(device(battery_percent=12), [target], [allow_all()], [], DAY)
    enough = decide(device(battery_percent=20), [target], [allow_all()], [], DAY)
    assert low.action is Action.WAIT
    assert "battery 12% is below the 20% this release needs" in low.reasons
    assert enough.action is Action.INSTALL


def test_a_network_the_release_does_not_allow_means_wait() -> None:
    target = release("1.1", allowed_networks=frozenset({"wifi", "ethernet"}))
    cellular = decide(device(network="cellular"), [target], [allow_all()], [], DAY)
    wifi = decide(device(network="WIFI"), [target], [allow_all()], [], DAY)
    assert cellular.action is Action.WAIT
    assert "network cellular is not one this release may use (ethernet, wifi)" in cellular.reasons
    assert wifi.action is Action.INSTALL


def test_with_no_network_listed_any_network_but_offline_will_do() -> None:
    target = release("1.1")
    assert decide(device(network="metered"), [target], [allow_all()], [], DAY).action is (
        Action.INSTALL
    )
    offline = decide(device(network="offline"), [target], [allow_all()], [], DAY)
    assert offline.action is Action.WAIT
    assert "the device is offline" in offline.reasons


def test_every_failed_phone_check_is_reported() -> None:
    target = release("1.1", min_battery_percent=50, allowed_networks=frozenset({"wifi"}))
    phone = device(free_bytes=0, battery_percent=10, network="cellular")
    decision = decide(phone, [target], [allow_all()], [], DAY)
    assert decision.action is Action.WAIT
    assert decision.reasons[1:4] == (
        "free space 0 bytes is less than the 1000000 bytes the download needs",
        "battery 10% is below the 50% this release needs",
        "network cellular is not one this release may use (wifi)",
    )


def test_phone_checks_do_not_matter_when_nothing_is_allowed() -> None:
    decision = decide(
        device(battery_percent=1), [release("1.1", min_battery_percent=20)], [], [], DAY
    )
    assert decision.action is Action.NONE
    assert not any("battery" in reason for reason in decision.reasons)
