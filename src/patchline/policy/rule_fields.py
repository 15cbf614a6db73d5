"""The fields of a delivery rule: names, parsing from JSON or Python values, JSON form.

Shared by ``Rule`` (which validates on construction) and ``Amendment`` (which
validates the changes it carries) so both accept and reject exactly the same values.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from patchline.wire.release import NAME_PATTERN, REGION_PATTERN, UpdateClass

MAX_TITLE = 200
MAX_NOTE = 4096


class Effect(enum.StrEnum):
    """What a rule does to the updates it covers."""

    ALLOW = "allow"
    BLOCK = "block"


class FieldProblem(Exception):
    """A value does not fit a field; turned into InvalidRuleError naming the field."""


FIELDS: tuple[str, ...] = (
    "id",
    "title",
    "effect",
    "priority",
    "update_classes",
    "models",
    "regions_allowed",
    "regions_excluded",
    "deployed_before",
    "deployed_on_or_after",
    "valid_from",
    "valid_until",
    "note",
)
FIELDS_HINT = "rule fields are: " + ", ".join(FIELDS)
#: The fields that limit a rule by a date: ``null`` in a change removes the limit.
DATE_FIELDS: tuple[str, ...] = (
    "deployed_before",
    "deployed_on_or_after",
    "valid_from",
    "valid_until",
)


def _text(limit: int) -> Callable[[object], str]:
    def parse(value: object) -> str:
        if not isinstance(value, str):
            raise FieldProblem("must be text")
        if len(value) > limit:
            raise FieldProblem(f"is longer than {limit} characters")
        return value

    return parse


def _slug(value: object) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise FieldProblem(
            f"{value!r} is not a valid id: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def _effect(value: object) -> Effect:
    try:
        return Effect(str(value))
    except ValueError:
        raise FieldProblem(f"{value!r} is not 'allow' or 'block'") from None


def _priority(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise FieldProblem(f"{value!r} is not an integer")
    return value


def _items(value: object) -> list[object]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise FieldProblem("must be a list")
    return list(value)


def _update_classes(value: object) -> frozenset[UpdateClass]:
    classes: set[UpdateClass] = set()
    for item in _items(value):
        try:
            classes.add(UpdateClass(str(item)))
        except ValueError:
            known = ", ".join(c.value for c in UpdateClass)
            raise FieldProblem(f"{item!r} is not an update class ({known})") from None
    return frozenset(classes)


def _models(value: object) -> frozenset[str]:
    models: set[str] = set()
    for item in _items(value):
        if not isinstance(item, str) or not NAME_PATTERN.match(item):
            raise FieldProblem(f"{item!r} is not a model name")
        models.add(item)
    return frozenset(models)


def _regions(value: object) -> frozenset[str]:
    regions: set[str] = set()
    for item in _items(value):
        code = item.strip().upper() if isinstance(item, str) else None
        if code is None or not REGION_PATTERN.match(code):
            raise FieldProblem(f"{item!r} is not a region code such as DE, US or EU")
        regions.add(code)
    return frozenset(regions)


def parse_date(value: object) -> date | None:
    """Return a date from a ``date`` or "YYYY-MM-DD" (None stays None); FieldProblem else."""
    if value is None:
        return None
    if isinstance(value, date) and type(value) is date:
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise FieldProblem(f"{value!r} is not a date (YYYY-MM-DD)")


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def sorted_classes(value: frozenset[UpdateClass]) -> list[str]:
    """Return the classes' names in their fixed order (security, corrective, functional)."""
    return [c.value for c in UpdateClass if c in value]


PARSERS: dict[str, Callable[[object], Any]] = {
    "id": _slug,
    "title": _text(MAX_TITLE),
    "effect": _effect,
    "priority": _priority,
    "update_classes": _update_classes,
    "models": _models,
    "regions_allowed": _regions,
    "regions_excluded": _regions,
    "deployed_before": parse_date,
    "deployed_on_or_after": parse_date,
    "valid_from": parse_date,
    "valid_until": parse_date,
    "note": _text(MAX_NOTE),
}

SERIALIZERS: dict[str, Callable[[Any], Any]] = {
    "id": str,
    "title": str,
    "effect": lambda v: v.value,
    "priority": int,
    "update_classes": sorted_classes,
    "models": sorted,
    "regions_allowed": sorted,
    "regions_excluded": sorted,
    "deployed_before": _iso,
    "deployed_on_or_after": _iso,
    "valid_from": _iso,
    "valid_until": _iso,
    "note": str,
}


def join_names(values: Iterable[str]) -> str:
    """Return the names sorted and comma-separated: "DE, FR"."""
    return ", ".join(sorted(values))


def class_names(classes: frozenset[UpdateClass]) -> str:
    """Return the classes for a sentence: "security", "security and corrective"."""
    names = sorted_classes(classes)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
