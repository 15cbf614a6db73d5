"""What a release says about itself, signed inside its TUF target's ``custom`` field.

python-tuf signs ``custom`` but never reads it: its meaning, validation and
enforcement are ours. Both the director (server) and the agent (device, when the
director is unreachable) read it through this module, so they agree on it.

Date semantics, for rules that read like a licence:

- ``deployed_before``: a device qualifies when it was deployed strictly before it.
- ``valid_until``: the release may be installed strictly before this date (the
  licence "until 2018-08-01" lapses on 2018-08-01).
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from patchline.errors import UsageError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
REGION_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,15}$")
FORMAT = "patchline.release/1"


def model_lookup_path(model: str) -> str:
    """A path delegated to the model's role but not to its archive: looking it up with a
    TUF client loads and verifies exactly the model's current role, nothing more.

    No target is ever published under it; full images and deltas live at
    ``MODEL/BUILD/FILE``.
    """
    return f"{model}/releases"


class UpdateClass(enum.StrEnum):
    """What a release changes: security fixes, bug fixes, or new functions."""

    SECURITY = "security"
    CORRECTIVE = "corrective"
    FUNCTIONAL = "functional"


class InvalidReleaseInfo(UsageError):
    """A release's custom fields (or the values meant for them) are malformed."""


def check_name(kind: str, value: str) -> str:
    """Return ``value`` if it is a safe identifier (model, build); raise otherwise."""
    if not NAME_PATTERN.match(value):
        raise InvalidReleaseInfo(
            f"{kind} {value!r} is not a valid name",
            hint="use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return value


def parse_date(kind: str, value: str) -> date:
    """Parse an ISO date (YYYY-MM-DD) or raise a message naming the field."""
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidReleaseInfo(
            f"{kind} {value!r} is not a date", hint="write dates as YYYY-MM-DD"
        ) from None


def parse_datetime(kind: str, value: str) -> datetime:
    """Parse an ISO 8601 instant; a value without a zone is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidReleaseInfo(
            f"{kind} {value!r} is not a date and time",
            hint="write instants as YYYY-MM-DDTHH:MM:SSZ",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_regions(values: Iterable[str]) -> tuple[str, ...]:
    """Normalise region codes (ISO 3166 or a named group such as EU) to sorted upper case."""
    regions: set[str] = set()
    for raw in values:
        for part in raw.split(","):
            code = part.strip().upper()
            if not code:
                continue
            if not REGION_PATTERN.match(code):
                raise InvalidReleaseInfo(
                    f"region {part.strip()!r} is not a region code",
                    hint="use ISO 3166 codes such as DE or US, or a group name such as EU",
                )
            regions.add(code)
    return tuple(sorted(regions))


@dataclass(frozen=True)
class AmendmentRef:
    """The amendment of a delivery rule a release's eligibility was (re-)signed under: its
    number in the server's store and the day it took effect."""

    id: int
    effective_from: date

    def __post_init__(self) -> None:
        if not isinstance(self.id, int) or isinstance(self.id, bool) or self.id < 0:
            raise InvalidReleaseInfo(f"amendment id {self.id!r} is not a whole number")

    @property
    def label(self) -> str:
        """How a person reads it: "amendment 2 of 2018-07-20"."""
        return f"amendment {self.id} of {self.effective_from.isoformat()}"

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form kept in the signed eligibility."""
        return {"id": self.id, "effective_from": self.effective_from.isoformat()}

    @classmethod
    def from_json(cls, data: object) -> AmendmentRef:
        """Read the JSON form; raise InvalidReleaseInfo when malformed."""
        _require_mapping("amendment", data)
        assert isinstance(data, Mapping)
        number = data.get("id")
        if not isinstance(number, int) or isinstance(number, bool):
            raise InvalidReleaseInfo("field 'amendment.id' must be an integer")
        return cls(id=number, effective_from=parse_date("amendment", _str("effective_from", data)))


@dataclass(frozen=True)
class Eligibility:
    """Who may install a release and until when; empty fields mean no limit."""

    regions_allowed: tuple[str, ...] = ()
    regions_excluded: tuple[str, ...] = ()
    deployed_before: date | None = None
    valid_until: date | None = None
    #: The delivery rule this release was authorised under (``patchline.policy.authorise``),
    #: so that an install from a mirror or a bundle can say which rule allowed it.
    rule: str = ""
    #: The amendment of ``rule`` that set the limits signed here, when one did (a licence
    #: extended by an amendment and the release re-signed under it). Older releases and
    #: readers do without it: the JSON form carries it only when set.
    amendment: AmendmentRef | None = None

    def __post_init__(self) -> None:
        if self.rule:
            check_name("rule", self.rule)
        if self.amendment is not None and not self.rule:
            raise InvalidReleaseInfo("an eligibility naming an amendment must name its rule")
        overlap = set(self.regions_allowed) & set(self.regions_excluded)
        if overlap:
            raise InvalidReleaseInfo(
                f"regions {', '.join(sorted(overlap))} are both allowed and excluded"
            )

    def refusals(self, *, region: str | None, deployed_on: date | None, today: date) -> list[str]:
        """Return why a device with these facts may not install, or an empty list if it may."""
        reasons: list[str] = []
        region_code = region.upper() if region else None
        if self.regions_allowed and region_code not in self.regions_allowed:
            reasons.append(
                f"region {region_code or 'unknown'} is not among {', '.join(self.regions_allowed)}"
            )
        if region_code is not None and region_code in self.regions_excluded:
            reasons.append(f"region {region_code} is excluded")
        if self.deployed_before is not None:
            if deployed_on is None:
                reasons.append(
                    f"deployment date unknown; release is only for devices deployed before "
                    f"{self.deployed_before.isoformat()}"
                )
            elif deployed_on >= self.deployed_before:
                reasons.append(
                    f"deployed {deployed_on.isoformat()}, not before "
                    f"{self.deployed_before.isoformat()}"
                )
        if self.valid_until is not None and today >= self.valid_until:
            reasons.append(f"release validity ended on {self.valid_until.isoformat()}")
        return reasons

    def intersect(self, other: Eligibility) -> Eligibility | None:
        """The devices and days both allow, or None when no region is left to either.

        The result names ``other``'s rule (and amendment) when it is narrower than this
        one, else this one's (the rule a device installs under is the one that still allows
        it).
        """
        excluded = set(self.regions_excluded) | set(other.regions_excluded)
        if self.regions_allowed and other.regions_allowed:
            allowed = set(self.regions_allowed) & set(other.regions_allowed)
        else:
            allowed = set(self.regions_allowed or other.regions_allowed)
        if (self.regions_allowed or other.regions_allowed) and not allowed - excluded:
            return None
        allowed -= excluded
        merged = Eligibility(
            regions_allowed=tuple(sorted(allowed)),
            regions_excluded=tuple(sorted(excluded - allowed)),
            deployed_before=_earliest(self.deployed_before, other.deployed_before),
            valid_until=_earliest(self.valid_until, other.valid_until),
            rule=self.rule,
            amendment=self.amendment,
        )
        if merged != self and other.rule:
            merged = dataclasses.replace(merged, rule=other.rule, amendment=other.amendment)
        return merged

    def covers(self, other: Eligibility) -> bool:
        """True when this eligibility admits every device, on every day, that ``other``
        admits (rule names aside)."""
        if self.regions_allowed and not (
            other.regions_allowed
            and set(other.regions_allowed) - set(other.regions_excluded)
            <= set(self.regions_allowed)
        ):
            return False
        for code in self.regions_excluded:
            if code not in other.regions_excluded and (
                not other.regions_allowed or code in other.regions_allowed
            ):
                return False
        return _no_earlier(self.deployed_before, other.deployed_before) and _no_earlier(
            self.valid_until, other.valid_until
        )

    def change_from(self, before: Eligibility) -> str:
        """Say how this eligibility differs from ``before``: "widened", "narrowed",
        "unchanged" (the same limits, perhaps under another rule name) or "changed"
        (wider in some respect and narrower in another)."""
        wider, narrower = self.covers(before), before.covers(self)
        if wider and narrower:
            return "unchanged"
        if wider:
            return "widened"
        return "narrowed" if narrower else "changed"

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form kept in the signed target."""
        data: dict[str, Any] = {
            "regions_allowed": list(self.regions_allowed),
            "regions_excluded": list(self.regions_excluded),
            "deployed_before": _iso_or_none(self.deployed_before),
            "valid_until": _iso_or_none(self.valid_until),
            "rule": self.rule,
        }
        if self.amendment is not None:
            data["amendment"] = self.amendment.to_json()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Eligibility:
        """Read the JSON form; raise InvalidReleaseInfo when malformed."""
        _require_mapping("eligibility", data)
        return cls(
            regions_allowed=parse_regions(_str_list("regions_allowed", data)),
            regions_excluded=parse_regions(_str_list("regions_excluded", data)),
            deployed_before=_optional_date("deployed_before", data),
            valid_until=_optional_date("valid_until", data),
            rule=_str("rule", data) if data.get("rule") else "",
            amendment=AmendmentRef.from_json(data["amendment"])
            if data.get("amendment") is not None
            else None,
        )


@dataclass(frozen=True)
class ReleaseInfo:
    """The facts about one full image release, as signed in its TUF target."""

    model: str
    build: str
    build_time: datetime
    security_patch_level: date
    update_class: UpdateClass
    eligibility: Eligibility = field(default_factory=Eligibility)
    notes: str = ""

    def __post_init__(self) -> None:
        check_name("model", self.model)
        check_name("build", self.build)
        if self.build_time.tzinfo is None:
            raise InvalidReleaseInfo("build_time must carry a time zone")
        if len(self.notes) > 4096:
            raise InvalidReleaseInfo("release notes are longer than 4096 characters")

    def to_custom(self) -> dict[str, Any]:
        """Return the dictionary stored as the target's ``custom`` field."""
        return {
            "format": FORMAT,
            "kind": "full",
            "model": self.model,
            "build": self.build,
            "build_time": self.build_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "security_patch_level": self.security_patch_level.isoformat(),
            "update_class": self.update_class.value,
            "eligibility": self.eligibility.to_json(),
            "notes": self.notes,
        }

    @classmethod
    def from_custom(cls, data: Mapping[str, Any]) -> ReleaseInfo:
        """Read a target's ``custom`` field; raise InvalidReleaseInfo when it is not ours."""
        _require_mapping("custom", data)
        if data.get("format") != FORMAT or data.get("kind") != "full":
            raise InvalidReleaseInfo(f"target is not a {FORMAT} full image")
        try:
            update_class = UpdateClass(str(data.get("update_class")))
        except ValueError:
            raise InvalidReleaseInfo(f"unknown update class {data.get('update_class')!r}") from None
        return cls(
            model=_str("model", data),
            build=_str("build", data),
            build_time=parse_datetime("build_time", _str("build_time", data)),
            security_patch_level=parse_date(
                "security_patch_level", _str("security_patch_level", data)
            ),
            update_class=update_class,
            eligibility=Eligibility.from_json(data.get("eligibility") or {}),
            notes=str(data.get("notes", "")),
        )


@dataclass(frozen=True)
class DeltaTargetInfo:
    """The facts about a delta target: which exact source image it applies to, and which
    full image it produces. Target path: ``MODEL/BUILD/delta-from-SOURCE_BUILD.patch``."""

    model: str
    build: str
    source_build: str
    source_sha256: str
    full_target: str
    full_sha256: str
    full_length: int

    def __post_init__(self) -> None:
        check_name("model", self.model)
        check_name("build", self.build)
        check_name("source build", self.source_build)
        for kind, value in (("source", self.source_sha256), ("full", self.full_sha256)):
            if not re.fullmatch(r"[0-9a-f]{64}", value):
                raise InvalidReleaseInfo(f"{kind} sha256 {value!r} is not a sha256 digest")
        if self.full_length < 0:
            raise InvalidReleaseInfo("full image length is negative")

    def to_custom(self) -> dict[str, Any]:
        """Return the dictionary stored as the delta target's ``custom`` field."""
        return {
            "format": FORMAT,
            "kind": "delta",
            "model": self.model,
            "build": self.build,
            "source_build": self.source_build,
            "source_sha256": self.source_sha256,
            "full_target": self.full_target,
            "full_sha256": self.full_sha256,
            "full_length": self.full_length,
        }

    @classmethod
    def from_custom(cls, data: Mapping[str, Any]) -> DeltaTargetInfo:
        """Read a delta target's ``custom`` field; raise InvalidReleaseInfo if it is not one."""
        _require_mapping("custom", data)
        if data.get("format") != FORMAT or data.get("kind") != "delta":
            raise InvalidReleaseInfo(f"target is not a {FORMAT} delta")
        length = data.get("full_length")
        if not isinstance(length, int):
            raise InvalidReleaseInfo("field 'full_length' must be an integer")
        return cls(
            model=_str("model", data),
            build=_str("build", data),
            source_build=_str("source_build", data),
            source_sha256=_str("source_sha256", data),
            full_target=_str("full_target", data),
            full_sha256=_str("full_sha256", data),
            full_length=length,
        )


def delta_target_path(model: str, build: str, source_build: str) -> str:
    """The TUF target path of the delta from ``source_build`` to ``build``."""
    return f"{model}/{build}/delta-from-{source_build}.patch"


def _earliest(first: date | None, second: date | None) -> date | None:
    if first is None or second is None:
        return first or second
    return min(first, second)


def _no_earlier(limit: date | None, other: date | None) -> bool:
    """True when the exclusive limit ``limit`` admits every day ``other`` admits."""
    return limit is None or (other is not None and other <= limit)


def _iso_or_none(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _require_mapping(kind: str, data: object) -> None:
    if not isinstance(data, Mapping):
        raise InvalidReleaseInfo(f"{kind} must be an object")


def _str(key: str, data: Mapping[str, Any]) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise InvalidReleaseInfo(f"field {key!r} must be a string")
    return value


def _str_list(key: str, data: Mapping[str, Any]) -> list[str]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidReleaseInfo(f"field {key!r} must be a list of strings")
    return value


def _optional_date(key: str, data: Mapping[str, Any]) -> date | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidReleaseInfo(f"field {key!r} must be a date string")
    return parse_date(key, value)
