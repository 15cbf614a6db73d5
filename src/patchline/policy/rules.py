"""Delivery rules as data, and the amendments that change them from a date on.

A rule allows or blocks updates of some classes, for some models, regions and
deployment dates, within a validity window. Which rule wins for a device is the
director's business (``patchline.policy.decide``); this module only says what a rule
is, whether it is in force on a day, whether it covers a device and release, and how
it reads to a person.

Date semantics match the signed eligibility (``patchline.wire.release``):

- ``deployed_before`` is exclusive, ``deployed_on_or_after`` inclusive;
- ``valid_from`` is inclusive, ``valid_until`` exclusive: a rule "until 2018-08-01"
  lapses on 2018-08-01.

Unknown device facts fail closed: a rule that limits by region or deployment date
never *allows* a device whose region or deployment date is unknown, but it does
*block* one.

Amendments never rewrite history: the rule as in force on a day is the original with
every amendment whose ``effective_from`` is on or before that day applied in order of
``(effective_from, sequence)``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from patchline.errors import InvalidAmendmentError, InvalidRuleError
from patchline.policy.rule_fields import (
    FIELDS,
    FIELDS_HINT,
    MAX_NOTE,
    PARSERS,
    SERIALIZERS,
    Effect,
    FieldProblem,
    class_names,
    join_names,
    parse_date,
)
from patchline.wire.release import NAME_PATTERN, UpdateClass

__all__ = [
    "FIELDS",
    "Amendment",
    "Effect",
    "Rule",
    "RuleStatus",
    "RuleVersion",
    "ScopeCheck",
    "amendments_of",
    "known_on",
    "last_setting",
    "precedence",
    "rule_history",
    "rule_on",
    "status_sentence",
]


class RuleStatus(enum.StrEnum):
    """Where a day falls in a rule's validity window."""

    IN_FORCE = "in-force"
    NOT_YET_IN_FORCE = "not-yet-in-force"
    LAPSED = "lapsed"


@dataclass(frozen=True)
class ScopeCheck:
    """Whether a rule covers one device and release, and why not when it does not."""

    applies: bool
    #: Device facts outside the rule's scope, as clauses ("region KP is excluded").
    device_mismatches: tuple[str, ...] = ()
    #: Release facts outside the rule's scope ("update class functional is not among ...").
    release_mismatches: tuple[str, ...] = ()
    #: Facts the rule limits but the device did not report ("deployment date unknown").
    unknowns: tuple[str, ...] = ()
    #: The rule fields behind the mismatches ("update_classes", "deployed_before", ...).
    fields: tuple[str, ...] = ()

    @property
    def mismatches(self) -> tuple[str, ...]:
        """Every fact outside the rule's scope, release facts first."""
        return self.release_mismatches + self.device_mismatches


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One delivery rule; validated (and normalised) on construction.

    Empty ``update_classes``, ``models``, ``regions_allowed`` mean "all"; ``None`` dates
    mean "no limit". Strings are accepted where enums or dates are expected.
    """

    id: str
    effect: Effect
    title: str = ""
    priority: int = 0
    update_classes: frozenset[UpdateClass] = frozenset()
    models: frozenset[str] = frozenset()
    regions_allowed: frozenset[str] = frozenset()
    regions_excluded: frozenset[str] = frozenset()
    deployed_before: date | None = None
    deployed_on_or_after: date | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    note: str = ""

    def __post_init__(self) -> None:
        rule_id = _parse_field(self, "id", self.id)
        for name in FIELDS:
            object.__setattr__(self, name, _parse_field(self, name, getattr(self, name), rule_id))
        overlap = self.regions_allowed & self.regions_excluded
        if overlap:
            raise _invalid(
                rule_id,
                "regions_excluded",
                f"regions {', '.join(sorted(overlap))} are both allowed and excluded",
            )
        before, after = self.deployed_before, self.deployed_on_or_after
        if before is not None and after is not None and after >= before:
            raise _invalid(
                rule_id,
                "deployed_on_or_after",
                f"{after.isoformat()} is not before deployed_before {before.isoformat()}; "
                "no device could match",
            )
        start, end = self.valid_from, self.valid_until
        if start is not None and end is not None and start >= end:
            raise _invalid(
                rule_id,
                "valid_until",
                f"{end.isoformat()} is not after valid_from {start.isoformat()}; "
                "the rule would never be in force",
            )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Rule:
        """Read a rule's JSON form; raise InvalidRuleError naming the field at fault."""
        if not isinstance(data, Mapping):
            raise InvalidRuleError("a rule must be a JSON object")
        rule_id = data.get("id")
        label = rule_id if isinstance(rule_id, str) else "?"
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise _invalid(label, unknown[0], "is not a rule field", hint=FIELDS_HINT)
        for required in ("id", "effect"):
            if data.get(required) is None:
                raise _invalid(label, required, "is required")
        return cls(**dict(data))

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form (``from_json`` reads it back to an equal rule)."""
        return {name: SERIALIZERS[name](getattr(self, name)) for name in FIELDS}

    def status_on(self, day: date) -> RuleStatus:
        """Return whether ``day`` is before, inside or after the validity window."""
        if self.valid_from is not None and day < self.valid_from:
            return RuleStatus.NOT_YET_IN_FORCE
        if self.valid_until is not None and day >= self.valid_until:
            return RuleStatus.LAPSED
        return RuleStatus.IN_FORCE

    def status_sentence(self, day: date) -> str:
        """Say in words whether the rule is in force on ``day``."""
        status = self.status_on(day)
        if status is RuleStatus.LAPSED:
            assert self.valid_until is not None
            return f"rule {self.id} lapsed on {self.valid_until.isoformat()}"
        if status is RuleStatus.NOT_YET_IN_FORCE:
            assert self.valid_from is not None
            return f"rule {self.id} is not yet in force; it starts on {self.valid_from.isoformat()}"
        return f"rule {self.id} is in force"

    def scope(
        self,
        *,
        model: str,
        update_class: UpdateClass,
        region: str | None,
        deployed_on: date | None,
    ) -> ScopeCheck:
        """Return whether this rule covers a device and release, ignoring the date.

        A limit on a fact the device did not report (region, deployment date) makes an
        allow rule not apply and a block rule apply.
        """
        release: list[str] = []
        mismatches: list[str] = []
        unknowns: list[str] = []
        fields: list[str] = []
        if self.models and model not in self.models:
            release.append(f"model {model} is not among {join_names(self.models)}")
            fields.append("models")
        if self.update_classes and update_class not in self.update_classes:
            release.append(
                f"update class {update_class.value} is not among {class_names(self.update_classes)}"
            )
            fields.append("update_classes")
        code = region.upper() if region else None
        if self.regions_allowed or self.regions_excluded:
            if code is None:
                unknowns.append("region unknown")
            elif self.regions_allowed and code not in self.regions_allowed:
                mismatches.append(f"region {code} is not among {join_names(self.regions_allowed)}")
                fields.append("regions_allowed")
            elif code in self.regions_excluded:
                mismatches.append(f"region {code} is excluded")
                fields.append("regions_excluded")
        if self.deployed_before is not None or self.deployed_on_or_after is not None:
            if deployed_on is None:
                unknowns.append("deployment date unknown")
            else:
                if self.deployed_before is not None and deployed_on >= self.deployed_before:
                    mismatches.append(
                        f"deployed {deployed_on.isoformat()}, not before "
                        f"{self.deployed_before.isoformat()}"
                    )
                    fields.append("deployed_before")
                if (
                    self.deployed_on_or_after is not None
                    and deployed_on < self.deployed_on_or_after
                ):
                    mismatches.append(
                        f"deployed {deployed_on.isoformat()}, before "
                        f"{self.deployed_on_or_after.isoformat()}"
                    )
                    fields.append("deployed_on_or_after")
        applies = not release and not mismatches and (not unknowns or self.effect is Effect.BLOCK)
        return ScopeCheck(
            applies, tuple(mismatches), tuple(release), tuple(unknowns), tuple(fields)
        )

    def describe(self) -> str:
        """Say what the rule does, in one sentence a compliance officer can check.

        For example "rule L-2018-07 (priority 200) allows security updates to devices
        deployed before 2018-04-15 outside KP from 2018-07-02 until 2018-08-01".
        """
        verb = "allows" if self.effect is Effect.ALLOW else "blocks"
        what = (
            f"{class_names(self.update_classes)} updates" if self.update_classes else "all updates"
        )
        parts = [f"rule {self.id} (priority {self.priority}) {verb} {what}"]
        if self.models:
            noun = "model" if len(self.models) == 1 else "models"
            parts.append(f"for {noun} {join_names(self.models)}")
        before, after = self.deployed_before, self.deployed_on_or_after
        if after is not None and before is not None:
            parts.append(
                f"to devices deployed on or after {after.isoformat()} and before "
                f"{before.isoformat()}"
            )
        elif before is not None:
            parts.append(f"to devices deployed before {before.isoformat()}")
        elif after is not None:
            parts.append(f"to devices deployed on or after {after.isoformat()}")
        if self.regions_allowed:
            parts.append(f"in {join_names(self.regions_allowed)}")
        if self.regions_excluded:
            parts.append(f"outside {join_names(self.regions_excluded)}")
        start, end = self.valid_from, self.valid_until
        if start is not None and end is not None:
            parts.append(f"from {start.isoformat()} until {end.isoformat()}")
        elif start is not None:
            parts.append(f"since {start.isoformat()}")
        elif end is not None:
            parts.append(f"until {end.isoformat()}")
        return " ".join(parts)


@dataclass(frozen=True, kw_only=True)
class Amendment:
    """A change to one rule that takes effect on ``effective_from`` (inclusive).

    ``changes`` maps rule fields (any but ``id``) to new values; they are validated on
    construction and kept in their JSON form. ``sequence`` orders amendments that take
    effect on the same day (the store's row id, and the number people call it by).

    ``recorded_at`` is when it was written down (None: not yet stored). An amendment
    effective before the day it is recorded is back-dated: it says ``backdated`` and
    gives a ``reason`` (``check_recording``).
    """

    rule_id: str
    effective_from: date
    changes: Mapping[str, Any] = field(hash=False)
    note: str = ""
    sequence: int = 0
    recorded_at: datetime | None = None
    backdated: bool = False
    reason: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.rule_id, str) or not NAME_PATTERN.match(self.rule_id):
            raise InvalidAmendmentError(f"amendment: rule_id {self.rule_id!r} is not a rule id")
        where = f"amendment of rule {self.rule_id}"
        try:
            effective = parse_date(self.effective_from)
        except FieldProblem as problem:
            raise InvalidAmendmentError(f"{where}: field 'effective_from' {problem}") from None
        if effective is None:
            raise InvalidAmendmentError(f"{where}: field 'effective_from' is required")
        object.__setattr__(self, "effective_from", effective)
        where = f"{where} effective {effective.isoformat()}"
        if not isinstance(self.changes, Mapping) or not self.changes:
            raise InvalidAmendmentError(f"{where}: changes must be a non-empty object")
        normalised: dict[str, Any] = {}
        for name, value in self.changes.items():
            if name == "id":
                raise InvalidAmendmentError(
                    f"{where}: an amendment cannot change a rule's id",
                    hint="write a new rule instead, and let this one lapse",
                )
            if name not in PARSERS:
                raise InvalidAmendmentError(
                    f"{where}: field {name!r} is not a rule field", hint=FIELDS_HINT
                )
            try:
                normalised[name] = SERIALIZERS[name](PARSERS[name](value))
            except FieldProblem as problem:
                raise InvalidAmendmentError(f"{where}: field {name!r} {problem}") from None
        object.__setattr__(self, "changes", normalised)
        if not isinstance(self.note, str) or len(self.note) > MAX_NOTE:
            raise InvalidAmendmentError(f"{where}: note must be text of at most {MAX_NOTE} chars")
        if not isinstance(self.sequence, int) or isinstance(self.sequence, bool):
            raise InvalidAmendmentError(f"{where}: sequence must be an integer")
        if not isinstance(self.backdated, bool):
            raise InvalidAmendmentError(f"{where}: backdated must be true or false")
        if not isinstance(self.reason, str) or len(self.reason) > MAX_NOTE:
            raise InvalidAmendmentError(f"{where}: reason must be text of at most {MAX_NOTE} chars")
        if self.recorded_at is not None and (
            not isinstance(self.recorded_at, datetime) or self.recorded_at.tzinfo is None
        ):
            raise InvalidAmendmentError(f"{where}: recorded_at must be an aware date and time")

    @property
    def label(self) -> str:
        """How a person names it: "amendment 2 of 2018-07-20" (number, effective date);
        "the amendment of 2018-07-20" when it has no number (not from a store)."""
        if self.sequence <= 0:
            return f"the amendment of {self.effective_from.isoformat()}"
        return f"amendment {self.sequence} of {self.effective_from.isoformat()}"

    def known_on(self, day: date) -> bool:
        """True when it had been recorded by the end of ``day`` (or its recording is not
        known: an amendment not from a store)."""
        return self.recorded_at is None or self.recorded_at.date() <= day

    def check_recording(self, recorded_at: datetime) -> None:
        """Raise InvalidAmendmentError unless ``backdated`` says truly whether it is
        effective before the day it is recorded, with a ``reason`` when it is."""
        recorded_on = recorded_at.date()
        where = f"amendment of rule {self.rule_id} effective {self.effective_from.isoformat()}"
        if self.effective_from < recorded_on:
            if not self.backdated or not self.reason.strip():
                raise InvalidAmendmentError(
                    f"{where} is back-dated: it takes effect before today "
                    f"({recorded_on.isoformat()}) and would change what the rules said on "
                    "days already past",
                    hint='say "backdated": true and give a "reason", or make it effective '
                    "from today",
                )
        elif self.backdated:
            raise InvalidAmendmentError(
                f"{where} is not back-dated: it takes effect on or after today "
                f"({recorded_on.isoformat()})",
                hint='leave out "backdated" (and "reason")',
            )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Amendment:
        """Read an amendment's JSON form; raise InvalidAmendmentError naming the field."""
        if not isinstance(data, Mapping):
            raise InvalidAmendmentError("an amendment must be a JSON object")
        allowed = {
            "rule_id",
            "effective_from",
            "changes",
            "note",
            "sequence",
            "recorded_at",
            "backdated",
            "reason",
        }
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise InvalidAmendmentError(f"amendment: field {unknown[0]!r} is not known")
        for required in ("rule_id", "effective_from", "changes"):
            if data.get(required) is None:
                raise InvalidAmendmentError(f"amendment: field {required!r} is required")
        values = dict(data)
        recorded = values.get("recorded_at")
        if isinstance(recorded, str):
            try:
                values["recorded_at"] = datetime.fromisoformat(recorded)
            except ValueError:
                raise InvalidAmendmentError(
                    f"amendment: recorded_at {recorded!r} is not a date and time"
                ) from None
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form (``from_json`` reads it back to an equal amendment)."""
        return {
            "rule_id": self.rule_id,
            "effective_from": self.effective_from.isoformat(),
            "changes": dict(self.changes),
            "note": self.note,
            "sequence": self.sequence,
            "recorded_at": self.recorded_at.isoformat() if self.recorded_at else None,
            "backdated": self.backdated,
            "reason": self.reason,
        }

    def apply_to(self, rule: Rule) -> Rule:
        """Return ``rule`` with these changes; raise InvalidAmendmentError if that is invalid."""
        if rule.id != self.rule_id:
            raise InvalidAmendmentError(
                f"amendment of rule {self.rule_id} cannot be applied to rule {rule.id}"
            )
        try:
            return Rule.from_json({**rule.to_json(), **self.changes})
        except InvalidRuleError as error:
            raise InvalidAmendmentError(
                f"amendment of rule {self.rule_id} effective {self.effective_from.isoformat()} "
                f"leaves it invalid: {error.message}"
            ) from None


@dataclass(frozen=True)
class RuleVersion:
    """The rule as it reads from ``effective_from`` on (``None``: as first written)."""

    effective_from: date | None
    rule: Rule
    amendment: Amendment | None = None


def precedence(rule: Rule) -> tuple[int, bool, str]:
    """Sort key putting the rule that decides first: highest priority, a block before an
    allow on a tie, then the id, so the order is stable."""
    return (-rule.priority, rule.effect is not Effect.BLOCK, rule.id)


def amendments_of(rule_id: str, amendments: Iterable[Amendment]) -> list[Amendment]:
    """Return the amendments of one rule in the order they apply."""
    own = [a for a in amendments if a.rule_id == rule_id]
    return sorted(own, key=lambda a: (a.effective_from, a.sequence))


def rule_history(rule: Rule, amendments: Iterable[Amendment]) -> tuple[RuleVersion, ...]:
    """Return every version of ``rule``, oldest first; amendments of other rules are ignored.

    Raises InvalidAmendmentError at the first amendment that would leave the rule
    invalid, so a store can call it before accepting a new amendment.
    """
    versions = [RuleVersion(None, rule)]
    for amendment in amendments_of(rule.id, amendments):
        versions.append(
            RuleVersion(amendment.effective_from, amendment.apply_to(versions[-1].rule), amendment)
        )
    return tuple(versions)


def last_setting(
    rule_id: str, amendments: Iterable[Amendment], day: date, fields: Iterable[str]
) -> Amendment | None:
    """Return the amendment of rule ``rule_id`` in effect on ``day`` that last set any of
    ``fields`` (so the value in force on ``day`` is its), or None when the rule as first
    written still decides them."""
    wanted = set(fields)
    found: Amendment | None = None
    for amendment in amendments_of(rule_id, amendments):
        if amendment.effective_from > day:
            break
        if wanted & set(amendment.changes):
            found = amendment
    return found


def known_on(amendments: Iterable[Amendment], day: date) -> list[Amendment]:
    """The amendments already recorded by the end of ``day``: the rules as they were
    known then, whatever their effective dates."""
    return [a for a in amendments if a.known_on(day)]


def status_sentence(rule: Rule, amendments: Iterable[Amendment], day: date) -> str:
    """``rule.status_sentence(day)`` for the rule as in force on ``day``, naming the
    amendment that set the date it lapsed on or starts on, when one did ("rule L-2018-07
    lapsed on 2018-09-01 (amendment 2 of 2018-07-20)")."""
    sentence = rule.status_sentence(day)
    status = rule.status_on(day)
    if status is RuleStatus.IN_FORCE:
        return sentence
    name = "valid_until" if status is RuleStatus.LAPSED else "valid_from"
    setter = last_setting(rule.id, amendments, day, [name])
    return sentence if setter is None else f"{sentence} ({setter.label})"


def rule_on(rule: Rule, amendments: Iterable[Amendment], day: date) -> Rule:
    """Return the rule as in force on ``day``: amendments effective on or before it applied.

    Amendments of other rules are ignored; later amendments are not read, so they
    cannot change what the rule said on ``day``.
    """
    current = rule
    for amendment in amendments_of(rule.id, amendments):
        if amendment.effective_from > day:
            break
        current = amendment.apply_to(current)
    return current


def _invalid(rule_id: str, name: str, problem: str, *, hint: str | None = None) -> InvalidRuleError:
    return InvalidRuleError(f"rule {rule_id}: field {name!r} {problem}", hint=hint)


def _parse_field(rule: Rule, name: str, value: object, rule_id: str | None = None) -> Any:
    try:
        return PARSERS[name](value)
    except FieldProblem as problem:
        label = rule_id if rule_id is not None else repr(value)
        raise _invalid(label, name, str(problem)) from None
