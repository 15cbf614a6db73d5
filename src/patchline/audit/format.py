"""What one audit entry is, byte for byte: records, canonical JSON, and the entry hash.

Everything that decides a hash lives here, so the chain, its verification and an
export's offline check cannot disagree about it.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from patchline.errors import AuditRecordError

#: Names the hash definition; a different definition would need a new tag.
HASH_TAG = "patchline.audit/1"
KIND_PATTERN = re.compile(r"[a-z][a-z0-9_.-]{0,31}")
MAX_ACTOR = 128
MAX_SUBJECT = 128


def canonical_json(value: Any) -> str:
    """Encode ``value`` as canonical JSON text: sorted keys, no whitespace, no NaN.

    Dates and times become ISO 8601 strings, enums their value, UUIDs their string.
    Raises AuditRecordError for anything else that JSON cannot hold.
    """
    try:
        text = json.dumps(
            value,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
            default=_jsonable,
        )
        text.encode("utf-8")  # lone surrogates cannot be stored or hashed
    except (TypeError, ValueError) as exc:
        raise AuditRecordError(f"the audit payload is not canonical JSON: {exc}") from None
    return text


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def format_at(at: datetime) -> str:
    """The instant as hashed and exported: UTC, microseconds, e.g. 2026-01-02T03:04:05.000000Z.

    A naive datetime (SQLite hands them back) is taken as UTC.
    """
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _digest(parts: list[Any]) -> str:
    return hashlib.sha256(canonical_json([HASH_TAG, *parts]).encode("utf-8")).hexdigest()


#: The hash the first entry links to (the head's hash at seq 0).
GENESIS_HASH = _digest(["genesis"])


def entry_hash(
    seq: int, at: str, kind: str, actor: str, subject: str, payload: str, prev_hash: str
) -> str:
    """The hash of one entry: sha256 of the canonical JSON array of all its fields.

    ``at`` is ``format_at`` text and ``payload`` the stored canonical JSON text. JSON
    array encoding is unambiguous, so two different entries never share an encoding.
    """
    return _digest([seq, at, kind, actor, subject, payload, prev_hash])


@dataclass(frozen=True)
class AuditRecord:
    """One thing to append to the chain; validated, and its payload frozen, on construction.

    ``at`` must be timezone-aware; ``kind`` is a short lowercase word ("decision",
    "report", "policy", "release", "enroll", "receipt"...); ``payload`` must be JSON
    (dates and times allowed) and is captured as canonical JSON text right here.
    """

    at: datetime
    kind: str
    actor: str
    subject: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    payload_json: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise AuditRecordError(f"audit record time {self.at!r} has no timezone")
        if not KIND_PATTERN.fullmatch(self.kind):
            raise AuditRecordError(
                f"audit kind {self.kind!r} is not a lowercase word of at most 32 characters"
            )
        for name, value, limit in (
            ("actor", self.actor, MAX_ACTOR),
            ("subject", self.subject, MAX_SUBJECT),
        ):
            if len(value) > limit or "\x00" in value:
                raise AuditRecordError(
                    f"audit {name} {value[:40]!r} is longer than {limit} characters or holds NUL"
                )
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise AuditRecordError(f"audit {name} {value[:40]!r} is not valid text") from None
        if not isinstance(self.payload, Mapping):
            raise AuditRecordError("an audit payload must be a JSON object (a mapping)")
        object.__setattr__(self, "payload_json", canonical_json(self.payload))
