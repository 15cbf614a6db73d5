"""The director's working: every check on every release a device could move to.

``evaluate`` sorts a device's releases into candidates (newer build, security patch
level not lower) and releases passed over, and assesses each candidate: the signed
eligibility, every rule as in force on the day, the rule that decides, the image to
download (delta or full) and the phone checks. ``decide`` turns this into a decision;
``explain`` shows all of it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from patchline.errors import InvalidRuleError
from patchline.policy.facts import OFFLINE, DeviceFacts, ReleaseFacts
from patchline.policy.rule_fields import class_names
from patchline.policy.rules import (
    Amendment,
    Effect,
    Rule,
    RuleStatus,
    ScopeCheck,
    last_setting,
    precedence,
    rule_on,
)
from patchline.wire.builds import build_sort_key


class Role(enum.StrEnum):
    """What a rule did for one candidate release."""

    DECIDED = "decided"  # the applicable rule with the highest priority
    OVERRIDDEN = "overridden"  # applicable, but another rule decided
    NOT_IN_FORCE = "not-in-force"  # would cover the device and release, but not on this day
    OUT_OF_SCOPE = "out-of-scope"  # does not cover this device or release


@dataclass(frozen=True)
class RuleVerdict:
    """One rule (as in force on the day) against one device and candidate release."""

    rule: Rule
    status: RuleStatus
    scope: ScopeCheck
    role: Role

    @property
    def applies(self) -> bool:
        """True when the rule is in force and covers the device and release."""
        return self.status is RuleStatus.IN_FORCE and self.scope.applies

    def to_json(self) -> dict[str, Any]:
        """Return the verdict as JSON values."""
        return {
            "rule_id": self.rule.id,
            "title": self.rule.title,
            "effect": self.rule.effect.value,
            "priority": self.rule.priority,
            "status": self.status.value,
            "in_scope": self.scope.applies,
            "release_mismatches": list(self.scope.release_mismatches),
            "device_mismatches": list(self.scope.device_mismatches),
            "unknowns": list(self.scope.unknowns),
            "role": self.role.value,
            "rule": self.rule.describe(),
        }


@dataclass(frozen=True)
class PhoneCheck:
    """One check of whether the device can take the download now."""

    name: str  # "free-space" | "battery" | "network"
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        """Return the check as JSON values."""
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True)
class Delivery:
    """What the device would download for a release: a delta for its exact image, or the
    full image."""

    target_path: str
    length: int
    sha256: str
    is_delta: bool
    full_target_path: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        """Return the delivery as JSON values."""
        return {
            "target_path": self.target_path,
            "length": self.length,
            "sha256": self.sha256,
            "is_delta": self.is_delta,
            "full_target_path": self.full_target_path,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Assessment:
    """Everything the director found about one candidate release for one device."""

    release: ReleaseFacts
    eligibility_refusals: tuple[str, ...]
    verdicts: tuple[RuleVerdict, ...]
    deciding: RuleVerdict | None
    delivery: Delivery
    phone_checks: tuple[PhoneCheck, ...]
    #: Allowing rules in force, of higher priority than the rule that refused, whose
    #: narrower scope is what keeps this device or release out, as clauses.
    narrowed_by: tuple[str, ...] = ()
    #: The ids of those rules.
    narrowing_rules: tuple[str, ...] = ()

    @property
    def eligible(self) -> bool:
        """True when the release's signed eligibility admits the device on the day."""
        return not self.eligibility_refusals

    @property
    def allowed(self) -> bool:
        """True when eligible and the deciding rule allows it (default deny)."""
        return (
            self.eligible
            and self.deciding is not None
            and self.deciding.rule.effect is Effect.ALLOW
        )

    @property
    def ready(self) -> bool:
        """True when every phone check passes."""
        return all(check.passed for check in self.phone_checks)

    def refusal(self) -> str | None:
        """Why the release is not offered, as a clause; None when it is allowed."""
        if self.eligibility_refusals:
            return "its signed eligibility refuses this device: " + "; ".join(
                self.eligibility_refusals
            )
        if self.deciding is None:
            return "; ".join(("no rule in force allows it", *self.narrowed_by))
        if self.deciding.rule.effect is Effect.BLOCK:
            return "; ".join((self.deciding.rule.describe(), *self.narrowed_by))
        return None

    def to_json(self) -> dict[str, Any]:
        """Return the assessment as JSON values."""
        return {
            "target_path": self.release.target_path,
            "build": self.release.build,
            "update_class": self.release.update_class.value,
            "security_patch_level": self.release.security_patch_level.isoformat(),
            "allowed": self.allowed,
            "refusal": self.refusal(),
            "eligibility": {
                "passed": self.eligible,
                "refusals": list(self.eligibility_refusals),
            },
            "deciding_rule": self.deciding.rule.id if self.deciding else None,
            "rules": [v.to_json() for v in self.verdicts],
            "delivery": self.delivery.to_json(),
            "phone_checks": [c.to_json() for c in self.phone_checks],
            "ready": self.ready,
        }


@dataclass(frozen=True)
class PassedOver:
    """A release of the device's model that is not a candidate, and why."""

    release: ReleaseFacts
    newer: bool  # a newer build, held back by its lower security patch level
    reason: str

    def to_json(self) -> dict[str, Any]:
        """Return it as JSON values."""
        return {
            "target_path": self.release.target_path,
            "build": self.release.build,
            "newer": self.newer,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Evaluation:
    """The candidates, newest first (up to the offer, or all), and releases passed over."""

    rules: tuple[Rule, ...]
    candidates: tuple[Assessment, ...]
    passed_over: tuple[PassedOver, ...]
    #: The amendments the rules were read with (to name the one behind a date or scope).
    amendments: tuple[Amendment, ...] = ()

    @property
    def offer(self) -> Assessment | None:
        """The newest allowed candidate, if any."""
        return next((a for a in self.candidates if a.allowed), None)


def evaluate(
    device: DeviceFacts,
    releases: Iterable[ReleaseFacts],
    rules: Iterable[Rule],
    amendments: Iterable[Amendment],
    day: date,
    *,
    stop_at_offer: bool = True,
) -> Evaluation:
    """Assess the device's candidate releases on ``day``, newest first.

    Raises InvalidRuleError when two rules share an id, InvalidAmendmentError when an
    amendment in effect on ``day`` leaves its rule invalid.

    With ``stop_at_offer`` the assessment stops at the first allowed candidate (all a
    decision needs); without it every candidate is assessed (what ``explain`` shows).
    """
    amendment_list = list(amendments)
    rule_list = list(rules)
    ids = [rule.id for rule in rule_list]
    duplicates = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
    if duplicates:
        raise InvalidRuleError(f"rule ids {', '.join(duplicates)} are given more than once")
    in_force = tuple(rule_on(rule, amendment_list, day) for rule in rule_list)
    candidates, passed_over = _sort(device, releases)
    assessed: list[Assessment] = []
    for release in candidates:
        assessment = assess(device, release, in_force, day, amendment_list)
        assessed.append(assessment)
        if stop_at_offer and assessment.allowed:
            break
    return Evaluation(in_force, tuple(assessed), passed_over, tuple(amendment_list))


def assess(
    device: DeviceFacts,
    release: ReleaseFacts,
    rules: Sequence[Rule],
    day: date,
    amendments: Iterable[Amendment] = (),
) -> Assessment:
    """Assess one candidate against ``rules`` (already as in force on ``day``);
    ``amendments`` only name the amendment behind a narrowing scope."""
    refusals = release.eligibility.refusals(
        region=device.region, deployed_on=device.deployed_on, today=day
    )
    checked = [
        (
            rule,
            rule.status_on(day),
            rule.scope(
                model=release.model,
                update_class=release.update_class,
                region=device.region,
                deployed_on=device.deployed_on,
            ),
        )
        for rule in rules
    ]
    applicable = [item for item in checked if item[1] is RuleStatus.IN_FORCE and item[2].applies]
    applicable.sort(key=lambda i: precedence(i[0]))
    winner = applicable[0][0] if applicable else None
    verdicts = tuple(
        RuleVerdict(rule, status, scope, _role(rule, status, scope, winner))
        for rule, status, scope in sorted(checked, key=lambda i: (-i[0].priority, i[0].id))
    )
    deciding = next((v for v in verdicts if v.role is Role.DECIDED), None)
    delivery = choose_delivery(device, release)
    narrowing = _narrowing(verdicts, deciding, day, list(amendments))
    return Assessment(
        release=release,
        eligibility_refusals=tuple(refusals),
        verdicts=verdicts,
        deciding=deciding,
        delivery=delivery,
        phone_checks=phone_checks(device, release, delivery),
        narrowed_by=tuple(clause for _, clause in narrowing),
        narrowing_rules=tuple(rule_id for rule_id, _ in narrowing),
    )


def _narrowing(
    verdicts: Sequence[RuleVerdict],
    deciding: RuleVerdict | None,
    day: date,
    amendments: list[Amendment],
) -> list[tuple[str, str]]:
    """When a block (or no rule) decides, the allowing rules in force that would have
    overridden it but whose scope leaves this device or release out: a licence's
    narrowing, not the ban, is then what keeps the build out. Rules for other models are
    left out."""
    if deciding is not None and deciding.rule.effect is not Effect.BLOCK:
        return []
    floor = deciding.rule.priority if deciding is not None else None
    found: list[tuple[str, str]] = []
    for verdict in verdicts:
        rule, scope = verdict.rule, verdict.scope
        if (
            rule.effect is not Effect.ALLOW
            or verdict.status is not RuleStatus.IN_FORCE
            or scope.applies
            or "models" in scope.fields
            or (floor is not None and rule.priority <= floor)
        ):
            continue
        overriding = ", which would override it," if deciding is not None else ""
        about_device = scope.device_mismatches + scope.unknowns
        if about_device:
            # The same words for every release, so the decision groups them.
            what = f"does not cover this device: {'; '.join(about_device)}"
            fields = [f for f in scope.fields if f != "update_classes"]
        else:
            what = f"covers only {class_names(rule.update_classes)} updates"
            fields = ["update_classes"]
        clause = f"rule {rule.id} (priority {rule.priority}){overriding} {what}"
        setter = last_setting(rule.id, amendments, day, fields) if fields else None
        if setter is not None:
            clause += f" (as narrowed by {setter.label})"
        found.append((rule.id, clause))
    return found


def choose_delivery(device: DeviceFacts, release: ReleaseFacts) -> Delivery:
    """Pick the delta made from exactly the device's build and image hash, else the full
    image."""
    for delta in release.deltas:
        if delta.source_build == device.build and delta.source_sha256 == device.build_sha256:
            return Delivery(
                delta.target_path,
                delta.length,
                delta.sha256,
                True,
                release.target_path,
                f"delta from build {device.build}: {delta.length} bytes instead of "
                f"{release.length}",
            )
    if any(delta.source_build == device.build for delta in release.deltas):
        detail = (
            f"full image: the delta from build {device.build} was made from a different "
            "image than the one this device runs"
        )
    else:
        detail = f"full image: no delta from build {device.build}"
    return Delivery(
        release.target_path, release.length, release.sha256, False, release.target_path, detail
    )


def phone_ready(
    free_bytes: int, battery_percent: int, network: str, release: ReleaseFacts, length: int
) -> bool:
    """True when a phone in this state passes every check ``phone_checks`` makes for a
    download of ``length`` bytes of ``release`` (the director's fast path)."""
    return (
        free_bytes >= length
        and battery_percent >= release.min_battery_percent
        and _network_ok(network, release)
    )


def _network_ok(network: str, release: ReleaseFacts) -> bool:
    if release.allowed_networks:
        return network in release.allowed_networks
    return network != OFFLINE


def phone_checks(
    device: DeviceFacts, release: ReleaseFacts, delivery: Delivery
) -> tuple[PhoneCheck, ...]:
    """Check free space (room for the download; the image goes to the inactive slot),
    battery and network."""
    need = delivery.length
    space = PhoneCheck(
        "free-space",
        device.free_bytes >= need,
        f"free space {device.free_bytes} bytes "
        + (
            f"holds the {need}-byte download"
            if device.free_bytes >= need
            else f"is less than the {need} bytes the download needs"
        ),
    )
    low = device.battery_percent < release.min_battery_percent
    battery = PhoneCheck(
        "battery",
        not low,
        f"battery {device.battery_percent}% is "
        + ("below" if low else "at or above")
        + f" the {release.min_battery_percent}% this release needs",
    )
    ok = _network_ok(device.network, release)
    if release.allowed_networks:
        listed = ", ".join(sorted(release.allowed_networks))
        detail = (
            f"network {device.network} is "
            + ("" if ok else "not ")
            + f"one this release may use ({listed})"
        )
    else:
        detail = "the device is offline" if not ok else f"network {device.network} is usable"
    return (space, battery, PhoneCheck("network", ok, detail))


def _role(rule: Rule, status: RuleStatus, scope: ScopeCheck, winner: Rule | None) -> Role:
    if not scope.applies:
        return Role.OUT_OF_SCOPE
    if status is not RuleStatus.IN_FORCE:
        return Role.NOT_IN_FORCE
    return Role.DECIDED if rule is winner else Role.OVERRIDDEN


def _sort(
    device: DeviceFacts, releases: Iterable[ReleaseFacts]
) -> tuple[list[ReleaseFacts], tuple[PassedOver, ...]]:
    running = build_sort_key(device.build)
    candidates: list[ReleaseFacts] = []
    passed: list[PassedOver] = []
    for release in releases:
        if release.model != device.model:
            continue
        if build_sort_key(release.build) <= running:
            passed.append(
                PassedOver(
                    release, False, f"build {release.build} is not newer than {device.build}"
                )
            )
        elif release.security_patch_level < device.security_patch_level:
            passed.append(
                PassedOver(
                    release,
                    True,
                    f"{release.label} is not offered: its security patch level "
                    f"{release.security_patch_level.isoformat()} is older than the device's "
                    f"{device.security_patch_level.isoformat()}",
                )
            )
        else:
            candidates.append(release)
    candidates.sort(key=lambda r: build_sort_key(r.build), reverse=True)
    passed.sort(key=lambda p: build_sort_key(p.release.build), reverse=True)
    return candidates, tuple(passed)
