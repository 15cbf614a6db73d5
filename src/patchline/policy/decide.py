"""The director's decision for one device on one day: install X, wait, or nothing, and why.

Semantics:

1. **Candidates** are the releases of the device's model whose build is newer than the
   running one (``build_sort_key``) and whose security patch level is not below the
   device's: an update never goes down. Other releases of the model are passed over.
2. Candidates are tried **newest first**. A candidate is **allowed** when
   a. its signed eligibility (``Eligibility.refusals`` with the device's region and
      deployment date, on the day) admits the device, and
   b. among the rules in force on the day (amendments effective by then applied) that
      cover the device and the release (model, update class, region, deployment-date
      cutoffs), the one with the highest priority allows it. On equal priority a block
      wins. No covering rule means not allowed (**default deny**).
   The first allowed candidate is **the offer**; older candidates are not looked at.
3. **Delivery**: the delta whose source build *and* source image hash equal the
   device's; otherwise the full image.
4. **Phone checks** on the offer only, never a reason to fall back to an older build:
   free space must hold the download (delta or full length; the image itself is
   written to the inactive A/B slot, not to free space), battery must be at least the
   release's ``min_battery_percent``, and the network must be one the release allows
   (none listed: any but "offline"). A failed check turns "install" into "wait".
5. The **decision** says ``install``, ``wait`` or ``none``, with plain sentences for a
   compliance officer (``reasons``) and the ids of every rule that covered a candidate
   it looked at: the one that decided, those it overrode, and those that would have
   covered it but are not in force on the day (lapsed or not yet in force).

A decision depends only on the facts in ``cohort_key`` (never on the device id, nor
on the day except through the rules and eligibility), so a server can cache it per
cohort and compare ``decision_digest`` values to tell when a device's answer changed.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

from patchline.policy.evaluate import Assessment, Evaluation, Role, evaluate
from patchline.policy.facts import DeltaFacts, DeviceFacts, ReleaseFacts
from patchline.policy.rules import Amendment, Effect, Rule, RuleStatus, status_sentence

__all__ = [
    "Action",
    "CohortKey",
    "Decision",
    "DeltaFacts",
    "DeviceFacts",
    "ReleaseFacts",
    "cohort_key",
    "decide",
    "decision_digest",
    "decision_from",
]


class Action(enum.StrEnum):
    """What the director tells the device; ``wait`` is allowed but not possible now."""

    INSTALL = "install"
    WAIT = "wait"
    NONE = "none"


@dataclass(frozen=True)
class Decision:
    """The director's answer for one device (and every device of its cohort)."""

    action: Action
    #: The release offered (install or wait), else None.
    release: ReleaseFacts | None
    #: What to download: the delta or the full image; None when nothing is offered.
    target_path: str | None
    length: int | None
    sha256: str | None
    is_delta: bool
    #: The full image the download produces.
    full_target_path: str | None
    reasons: tuple[str, ...]
    rule_ids: tuple[str, ...]
    #: The rule that allowed the release offered (None when nothing is offered). Not part
    #: of ``to_json`` nor of the digest: the reasons already name it.
    allowed_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the decision as JSON values."""
        return {
            "action": self.action.value,
            "release": self.release.to_json() if self.release else None,
            "target_path": self.target_path,
            "length": self.length,
            "sha256": self.sha256,
            "is_delta": self.is_delta,
            "full_target_path": self.full_target_path,
            "reasons": list(self.reasons),
            "rule_ids": list(self.rule_ids),
        }


class CohortKey(NamedTuple):
    """Every device fact a decision depends on, and the day; never the device id."""

    model: str
    region: str | None
    deployed_on: date | None
    build: str
    build_sha256: str
    security_patch_level: date
    free_bytes: int
    battery_percent: int
    network: str
    day: date


def cohort_key(device: DeviceFacts, day: date) -> CohortKey:
    """Return a hashable key such that devices with equal keys get equal decisions from
    the same releases, rules and amendments. It excludes ``device_id``."""
    return CohortKey(
        model=device.model,
        region=device.region,
        deployed_on=device.deployed_on,
        build=device.build,
        build_sha256=device.build_sha256,
        security_patch_level=device.security_patch_level,
        free_bytes=device.free_bytes,
        battery_percent=device.battery_percent,
        network=device.network,
        day=day,
    )


def decide(
    device: DeviceFacts,
    releases: Iterable[ReleaseFacts],
    rules: Iterable[Rule],
    amendments: Iterable[Amendment],
    day: date,
) -> Decision:
    """Decide what ``device`` may install on ``day`` under ``rules`` as amended by then.

    Pure: the same facts give the same decision. Raises InvalidRuleError for duplicate
    rule ids and InvalidAmendmentError for an amendment that breaks its rule.
    """
    return decision_from(device, evaluate(device, releases, rules, amendments, day), day)


def decision_from(device: DeviceFacts, evaluation: Evaluation, day: date) -> Decision:
    """Turn an evaluation (see ``patchline.policy.evaluate``) into the decision."""
    offer = evaluation.offer
    looked_at = _up_to_offer(evaluation)
    reasons = _headline(device, evaluation, offer)
    refused = [(a.refusal() or "", a.release) for a in looked_at if a is not offer]
    for why, releases in _grouped(refused):
        phrase, verb = _releases_phrase(releases)
        reasons.append(f"{phrase} {verb} not offered: {why}")
    reasons.extend(p.reason for p in evaluation.passed_over if p.newer)
    if offer is None:
        reasons.extend(_near_misses(looked_at))
    reasons.extend(_not_in_force(looked_at, day, evaluation.amendments))
    rule_ids = sorted(
        {
            v.rule.id
            for a in looked_at
            if a.eligible
            for v in a.verdicts
            if v.role is not Role.OUT_OF_SCOPE
        }
    )
    reasons = _dedupe(reasons)
    if offer is None:
        return Decision(
            action=Action.NONE,
            release=None,
            target_path=None,
            length=None,
            sha256=None,
            is_delta=False,
            full_target_path=None,
            reasons=tuple(reasons),
            rule_ids=tuple(rule_ids),
        )
    delivery = offer.delivery
    return Decision(
        action=Action.INSTALL if offer.ready else Action.WAIT,
        release=offer.release,
        target_path=delivery.target_path,
        length=delivery.length,
        sha256=delivery.sha256,
        is_delta=delivery.is_delta,
        full_target_path=delivery.full_target_path,
        reasons=tuple(reasons),
        rule_ids=tuple(rule_ids),
        allowed_by=offer.deciding.rule.id if offer.deciding is not None else None,
    )


def decision_digest(decision: Decision) -> str:
    """Return the sha256 hex digest of the decision's canonical JSON form; equal
    decisions have equal digests, and any change in action, target or reasons changes it."""
    canonical = json.dumps(
        decision.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _up_to_offer(evaluation: Evaluation) -> list[Assessment]:
    looked_at: list[Assessment] = []
    for assessment in evaluation.candidates:
        looked_at.append(assessment)
        if assessment.allowed:
            break
    return looked_at


def _headline(device: DeviceFacts, evaluation: Evaluation, offer: Assessment | None) -> list[str]:
    if offer is None:
        if not evaluation.candidates and not any(p.newer for p in evaluation.passed_over):
            return [f"no release newer than {device.build} for model {device.model}"]
        return [f"no update is offered to build {device.build} of model {device.model}"]
    label = offer.release.label
    assert offer.deciding is not None
    lines: list[str]
    if offer.ready:
        how = "as a delta" if offer.delivery.is_delta else "as the full image"
        lines = [f"install {label} {how}"]
    else:
        lines = [f"{label} is allowed but cannot be installed now"]
        lines.extend(check.detail for check in offer.phone_checks if not check.passed)
    lines.append(offer.deciding.rule.describe())
    lines.extend(
        f"overridden: {v.rule.describe()}" for v in offer.verdicts if v.role is Role.OVERRIDDEN
    )
    lines.append(offer.delivery.detail)
    return lines


def _near_misses(looked_at: list[Assessment]) -> list[str]:
    """Allow rules in force that did not cover an eligible candidate, and why. Rules for
    other models are left out: they are never what a reader is asking about."""
    device_lines: list[str] = []
    by_release: list[tuple[str, ReleaseFacts]] = []
    for assessment in looked_at:
        if not assessment.eligible:
            continue
        for verdict in assessment.verdicts:
            scope = verdict.scope
            if (
                verdict.rule.id in assessment.narrowing_rules  # said with the refusal
                or verdict.rule.effect is not Effect.ALLOW
                or verdict.role is not Role.OUT_OF_SCOPE
                or verdict.status is not RuleStatus.IN_FORCE
                or any(m.startswith("model ") for m in scope.release_mismatches)
            ):
                continue
            about_device = scope.device_mismatches + scope.unknowns
            if about_device:
                device_lines.append(
                    f"rule {verdict.rule.id} does not cover this device: {'; '.join(about_device)}"
                )
            else:
                why = "; ".join(scope.release_mismatches)
                by_release.append(
                    (f"rule {verdict.rule.id} does not cover|{why}", assessment.release)
                )
    lines = _dedupe(device_lines)
    for key, releases in _grouped(by_release):
        head, why = key.split("|", 1)
        lines.append(f"{head} {_releases_phrase(releases)[0]}: {why}")
    return lines


def _grouped(pairs: list[tuple[str, ReleaseFacts]]) -> list[tuple[str, list[ReleaseFacts]]]:
    """Group releases by a key, keeping the order in which keys first appear."""
    groups: dict[str, list[ReleaseFacts]] = {}
    for key, release in pairs:
        groups.setdefault(key, []).append(release)
    return list(groups.items())


def _releases_phrase(releases: list[ReleaseFacts]) -> tuple[str, str]:
    """Name releases for a sentence, with the verb form: ("build 1.4 (security update)",
    "is") or ("builds 1.6 (functional) and 1.5 (corrective)", "are")."""
    if len(releases) == 1:
        return releases[0].label, "is"
    names = [f"{r.build} ({r.update_class.value})" for r in releases]
    return "builds " + ", ".join(names[:-1]) + " and " + names[-1], "are"


def _not_in_force(
    looked_at: list[Assessment], day: date, amendments: Iterable[Amendment]
) -> list[str]:
    known = list(amendments)
    return [
        status_sentence(verdict.rule, known, day)
        for assessment in looked_at
        if assessment.eligible
        for verdict in assessment.verdicts
        if verdict.role is Role.NOT_IN_FORCE
    ]


def _dedupe(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(lines))
