"""The request bodies of the management API, typed so that /openapi.json describes every
field. Shapes and types are checked here (422 naming the field); what a rule means
(regions both allowed and excluded, dates in order, ...) is checked by
``patchline.policy.rules``, also 422."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
)

from patchline.policy.rule_fields import DATE_FIELDS, FIELDS, MAX_NOTE, MAX_TITLE, Effect
from patchline.wire.device_api import Network
from patchline.wire.release import NAME_PATTERN, UpdateClass

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: object) -> object:
    """Accept only "YYYY-MM-DD" text (or a date), never a number read as a timestamp
    (pydantic would read ``0`` or ``"0"`` as 1970-01-01)."""
    if (
        value is None
        or isinstance(value, date)
        or (isinstance(value, str) and _DAY.fullmatch(value))
    ):
        return value
    raise ValueError("must be a date written YYYY-MM-DD")


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
Text = Annotated[str, Field(max_length=MAX_NOTE)]


#: Rule fields that may be left out (kept as they are) but not given as ``null``; only
#: the date limits take ``null`` (no limit); the id never changes.
_NOT_NULL = tuple(f for f in FIELDS if f != "id" and f not in DATE_FIELDS)


def _without_nulls(schema: dict[str, Any]) -> None:
    """Take ``null`` out of the JSON schema of each field in ``_NOT_NULL``."""
    for name in _NOT_NULL:
        field = schema.get("properties", {}).get(name)
        if field is None:
            continue
        branches = [b for b in field.pop("anyOf", []) if b != {"type": "null"}]
        if len(branches) == 1:
            field.update(branches[0])
        elif branches:
            field["anyOf"] = branches


class RuleChanges(BaseModel):
    """Rule fields as an amendment changes them: only those given change (``null`` removes
    a date limit); the id never changes."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_without_nulls)

    title: str | None = Field(None, max_length=MAX_TITLE, description="A short name.")
    effect: Effect | None = Field(None, description="allow or block the updates covered.")
    priority: StrictInt | None = Field(
        None, description="Higher decides; on a tie a block wins over an allow."
    )
    update_classes: list[UpdateClass] | None = Field(
        None, description="The update classes covered; empty: all."
    )
    models: list[Annotated[str, Field(pattern=NAME_PATTERN.pattern)]] | None = Field(
        None, description="The device models covered; empty: all."
    )
    regions_allowed: list[str] | None = Field(
        None, description="Only devices in these regions (ISO 3166 or a group such as EU)."
    )
    regions_excluded: list[str] | None = Field(None, description="Never devices in these regions.")
    deployed_before: IsoDate | None = Field(
        None, description="Only devices deployed strictly before this day."
    )
    deployed_on_or_after: IsoDate | None = Field(
        None, description="Only devices deployed on or after this day."
    )
    valid_from: IsoDate | None = Field(None, description="In force from this day (inclusive).")
    valid_until: IsoDate | None = Field(
        None, description="In force until this day (exclusive): it lapses on it."
    )
    note: Text | None = Field(None, description="Free text: where the rule comes from.")

    @field_validator(*_NOT_NULL, mode="before")
    @classmethod
    def _null_only_for_dates(cls, value: object) -> object:
        """Refuse ``null`` for a field other than a date limit (leaving it out keeps it)."""
        if value is None:
            raise ValueError("may not be null: leave the field out to keep it as it is")
        return value

    def given(self) -> dict[str, Any]:
        """The fields the caller gave, in their JSON form."""
        return self.model_dump(mode="json", exclude_unset=True)


class RuleBody(RuleChanges):
    """A new delivery rule (see docs/policy.md); fields left out mean no limit."""

    id: str = Field(
        pattern=NAME_PATTERN.pattern,
        description="The rule's id: 1-64 letters, digits, '.', '_' or '-'.",
    )
    effect: Effect = Field(description="allow or block the updates covered.")


class AmendmentBody(BaseModel):
    """A change to a rule from a date on. One effective before today (the server's clock)
    is back-dated: it must say ``backdated: true`` and give a ``reason``."""

    model_config = ConfigDict(extra="forbid")

    effective_from: IsoDate = Field(description="The first day the change applies.")
    changes: RuleChanges = Field(description="The rule fields that change, and their values.")
    note: Text = Field("", description="Free text: where the amendment comes from.")
    backdated: StrictBool = Field(
        False, description="True for an amendment effective before the day it is recorded."
    )
    reason: Text = Field("", description="Why a back-dated amendment rewrites past days.")


class OfferSettings(BaseModel):
    """What a release manager may change about how a release is offered."""

    min_battery_percent: StrictInt | None = Field(default=None, ge=0, le=100)
    allowed_networks: list[Network] | None = None


class Reason(BaseModel):
    """Why: kept in the audit chain."""

    reason: str = Field(min_length=1, max_length=2000)


class OptionalReason(BaseModel):
    """Why, if given: kept in the audit chain."""

    reason: str = Field(default="", max_length=2000)


class YankBody(Reason):
    """Why, and whether to re-sign the release as lapsed in this server's repository."""

    lapse_signed: StrictBool = Field(
        default=True,
        description="Also re-sign the release valid until today in the repository in the "
        "server's home (its keys and passphrases), so agents refuse it offline too.",
    )


class SubscriptionBody(BaseModel):
    """A webhook subscription: where to POST which events (docs/webhooks.md)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, description="An http(s) URL that receives the events.")
    events: list[str] = Field(
        min_length=1, max_length=64, description="Event types to send (docs/webhooks.md)."
    )
    secret: str | None = Field(
        None,
        max_length=128,
        description="A `whsec_` signing secret; omitted: a new one, shown once in the answer.",
    )
    description: Text = ""


class ResendBody(BaseModel):
    """Which webhook messages to send again."""

    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] | None = Field(
        None, max_length=10_000, description="Message ids; omitted: every failed message."
    )


class DecisionBody(BaseModel):
    """An optional reason for approving or rejecting a proposal."""

    model_config = ConfigDict(extra="forbid")

    reason: Text = ""
