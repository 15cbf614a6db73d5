"""Signing a release under the delivery rules, so that devices enforce them without us.

The director applies the rules to each device while the server runs. A device that
updates from a mirror or an SD card has no director: all it has is the release's
signed eligibility (``patchline.wire.release.Eligibility``). ``authorise_release``
turns the rules in force on the signing day into that eligibility, or refuses to let
the release be signed at all:

- the highest-priority rule in force that covers the release (its model and update
  class) decides, as it would for the director; on a tie a block wins;
- a block rule that covers every device refuses the release ("rule denial-2018
  blocks all updates since 2018-04-15");
- a higher-priority block rule limited to some regions adds those regions to the
  excluded ones; a block limited any other way cannot be stated in eligibility, so
  the release is refused (deliver it through the director instead);
- the allowing rule's regions, ``deployed_before`` and ``valid_until`` become the
  release's; ``valid_until`` is also cut at the start of any higher-priority block
  already on the books (a ban announced for next week ends the release's validity);
- the eligibility names the allowing rule, so every offline install can say which rule
  allowed it, and the amendment of that rule that last set a signed limit, if any.

The signed eligibility therefore never allows a device the director would refuse on the
signing day; it may allow fewer (a lower-priority rule that would also have allowed
some devices is not consulted).

Rules change after a release is signed (a ban, a licence that narrows). Mirrors and
cards keep serving what was signed, so ``eligibility_under_rules`` gives what an
already signed release may keep: its own eligibility narrowed to what the rules now
allow, or lapsed on the day they allow it to nobody; the repository re-signs releases
with it (``patchline.repository.under_rules``). Rules alone never widen a signed release.

An amendment can: a licence extended after a release was signed under it.
``eligibility_resigned`` also lifts a date limit (``valid_until``, ``deployed_before``)
the release took from its rule when an amendment of that same rule, in effect on the
signing day, now sets it later; the result is still within what the rules allow, and
names the amendment. Nothing else widens: a limit the publisher chose (one no version of
the rule ever had), regions, a release signed without a rule, or a widening with no
amendment behind it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from patchline.errors import NotAuthorisedError
from patchline.policy.rules import (
    Amendment,
    Effect,
    Rule,
    RuleStatus,
    last_setting,
    precedence,
    rule_history,
    rule_on,
)
from patchline.wire.release import AmendmentRef, Eligibility, ReleaseInfo, UpdateClass

#: The rule fields a signed eligibility takes from the allowing rule.
SIGNED_FIELDS = ("regions_allowed", "regions_excluded", "deployed_before", "valid_until")
#: The limits a re-signing may lift when an amendment of the rule moved them later.
WIDENABLE = ("deployed_before", "valid_until")


@dataclass(frozen=True)
class Authorisation:
    """The rule that allows a release, and the eligibility to sign into it."""

    rule: Rule
    eligibility: Eligibility
    #: Why, in sentences: the allowing rule and every rule that narrowed it.
    reasons: tuple[str, ...]
    #: The amendment of ``rule`` that last set a signed limit, if any (also named in
    #: ``eligibility``).
    amendment: Amendment | None = None


def amendment_ref(amendment: Amendment) -> AmendmentRef:
    """The signed name of an amendment: its store number and effective date."""
    return AmendmentRef(id=amendment.sequence, effective_from=amendment.effective_from)


def authorise_release(
    *,
    model: str,
    update_class: UpdateClass,
    rules: Iterable[Rule],
    amendments: Iterable[Amendment] = (),
    day: date,
) -> Authorisation:
    """The eligibility a release of ``model`` and ``update_class`` may be signed with on
    ``day`` under ``rules`` (with ``amendments`` in force that day).

    Raises NotAuthorisedError, naming the rule, when no rule in force allows it, a rule
    blocks it for every device, or a rule limits it in a way eligibility cannot state.
    """
    known = list(amendments)
    current = [rule_on(rule, known, day) for rule in rules]
    covering = [r for r in current if _covers_release(r, model, update_class)]
    in_force = [r for r in covering if r.status_on(day) is RuleStatus.IN_FORCE]
    in_force.sort(key=precedence)
    excluded: set[str] = set()
    narrowed: list[str] = []
    what = f"{update_class.value} updates of {model}"
    for rule in in_force:
        if rule.effect is Effect.BLOCK:
            if not _limits_devices(rule):
                raise NotAuthorisedError(
                    f"not signed: {rule.describe()}",
                    hint="a release can be signed once a rule in force allows it",
                )
            if rule.deployed_before or rule.deployed_on_or_after or rule.regions_excluded:
                raise NotAuthorisedError(
                    f"not signed: {rule.describe()}, a limit signed eligibility cannot state",
                    hint="deliver this release through the director, which applies every rule",
                )
            excluded |= rule.regions_allowed
            narrowed.append(f"narrowed by {rule.describe()}")
            continue
        granted = _allowed_by(rule, excluded, covering, day, narrowed, what)
        behind = last_setting(rule.id, known, day, SIGNED_FIELDS)
        if behind is None:
            return granted
        return dataclasses.replace(
            granted,
            eligibility=dataclasses.replace(granted.eligibility, amendment=amendment_ref(behind)),
            reasons=(*granted.reasons, f"as set by {amendment_ref(behind).label}"),
            amendment=behind,
        )
    raise NotAuthorisedError(
        f"not signed: no rule in force on {day.isoformat()} allows {what}",
        hint="add or amend a rule that allows it, then sign the release",
    )


def authorise_with(
    given: Eligibility,
    *,
    model: str,
    update_class: UpdateClass,
    rules: Iterable[Rule],
    amendments: Iterable[Amendment] = (),
    day: date,
) -> Authorisation:
    """``authorise_release``, keeping the publisher's own limits ``given`` as well: the
    signed eligibility allows only what both allow, and names the allowing rule.

    Raises NotAuthorisedError as ``authorise_release`` does, and when ``given`` and the
    rule together leave no region.
    """
    granted = authorise_release(
        model=model, update_class=update_class, rules=rules, amendments=amendments, day=day
    )
    merged = given.intersect(granted.eligibility)
    if merged is None:
        raise NotAuthorisedError(
            f"not signed: the regions given and rule {granted.rule.id} leave no region"
        )
    return dataclasses.replace(
        granted,
        eligibility=dataclasses.replace(
            merged, rule=granted.rule.id, amendment=granted.eligibility.amendment
        ),
    )


def eligibility_under_rules(
    info: ReleaseInfo, *, rules: Iterable[Rule], amendments: Iterable[Amendment] = (), day: date
) -> Eligibility:
    """The eligibility a signed release may keep from ``day`` on under ``rules``: its own,
    narrowed to what the rules allow; lapsed on ``day`` (``valid_until``) when they
    allow it to no device. Never wider than the release's own."""
    own = info.eligibility
    lapsed = dataclasses.replace(
        own, valid_until=day if own.valid_until is None else min(own.valid_until, day)
    )
    try:
        granted = authorise_release(
            model=info.model,
            update_class=info.update_class,
            rules=rules,
            amendments=amendments,
            day=day,
        )
    except NotAuthorisedError:
        return lapsed
    narrowed = own.intersect(granted.eligibility)
    return lapsed if narrowed is None else narrowed


def eligibility_resigned(
    info: ReleaseInfo, *, rules: Iterable[Rule], amendments: Iterable[Amendment] = (), day: date
) -> Eligibility:
    """The eligibility a signed release may be re-signed with on ``day`` under ``rules``:
    narrowed as ``eligibility_under_rules`` narrows it, and widened where an amendment of
    the rule it was signed under, in effect on ``day``, moved a date limit the release took
    from that rule later. A widened eligibility names that amendment; it never admits a
    device or a day the rules in force on ``day`` refuse."""
    rule_list, known = list(rules), list(amendments)
    narrowed = eligibility_under_rules(info, rules=rule_list, amendments=known, day=day)
    own = info.eligibility
    original = next((r for r in rule_list if r.id == own.rule), None)
    if original is None:
        return narrowed  # signed without a rule, or under one that is gone: never widened
    try:
        granted = authorise_release(
            model=info.model,
            update_class=info.update_class,
            rules=rule_list,
            amendments=known,
            day=day,
        )
    except NotAuthorisedError:
        return narrowed
    if granted.rule.id != own.rule:
        return narrowed
    versions = [v.rule for v in rule_history(original, known)]
    lifted = own
    behind: list[Amendment] = []
    for name in WIDENABLE:
        signed, allowed = getattr(own, name), getattr(granted.eligibility, name)
        from_rule = {getattr(v, name) for v in versions}
        if signed is None or signed == allowed or signed not in from_rule:
            continue  # no limit, no change, or a limit the rule never set: keep it
        setter = last_setting(own.rule, known, day, [name])
        if setter is None:
            continue  # no amendment behind the difference: nothing to widen under
        lifted = (
            dataclasses.replace(lifted, valid_until=None)
            if name == "valid_until"
            else dataclasses.replace(lifted, deployed_before=None)
        )
        behind.append(setter)
    if not behind:
        return narrowed
    widened = lifted.intersect(granted.eligibility)
    if widened is None:
        return narrowed
    amendment = max(behind, key=lambda a: (a.effective_from, a.sequence))
    return dataclasses.replace(widened, rule=own.rule, amendment=amendment_ref(amendment))


def _allowed_by(
    rule: Rule,
    excluded: set[str],
    covering: list[Rule],
    day: date,
    narrowed: list[str],
    what: str,
) -> Authorisation:
    if rule.deployed_on_or_after is not None:
        raise NotAuthorisedError(
            f"not signed: {rule.describe()}, a limit signed eligibility cannot state",
            hint="deliver this release through the director, which applies every rule",
        )
    allowed = set(rule.regions_allowed) - excluded
    if rule.regions_allowed and not allowed:
        raise NotAuthorisedError(
            f"not signed: {rule.describe()}, but every region it allows is blocked "
            f"by a rule of higher priority"
        )
    until = rule.valid_until
    for other in covering:
        starts = other.valid_from
        if (
            other.effect is Effect.BLOCK
            and not _limits_devices(other)
            and other.priority >= rule.priority
            and starts is not None
            and starts > day
            and (until is None or starts < until)
        ):
            until = starts
            narrowed.append(f"valid until {starts.isoformat()}: {other.describe()}")
    eligibility = Eligibility(
        regions_allowed=tuple(sorted(allowed)),
        regions_excluded=tuple(sorted((set(rule.regions_excluded) | excluded) - allowed)),
        deployed_before=rule.deployed_before,
        valid_until=until,
        rule=rule.id,
    )
    return Authorisation(rule, eligibility, (f"{what}: {rule.describe()}", *narrowed))


def _covers_release(rule: Rule, model: str, update_class: UpdateClass) -> bool:
    if rule.models and model not in rule.models:
        return False
    return not rule.update_classes or update_class in rule.update_classes


def _limits_devices(rule: Rule) -> bool:
    return bool(
        rule.regions_allowed
        or rule.regions_excluded
        or rule.deployed_before is not None
        or rule.deployed_on_or_after is not None
    )
