"""Bodies hawkBit DDI controllers send (``/{tenant}/controller/v1/{controllerId}``).

The shapes of Eclipse hawkBit's Direct Device Integration API, as SWUpdate's suricatta
and RAUC's hawkBit client send them. Unknown fields are ignored (clients add their own),
but the fields read are typed: a feedback without ``status.execution`` is refused.
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

#: Largest body read on the DDI API.
MAX_DDI_BODY_BYTES = 64 * 1024

AttributeKey = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
AttributeValue = Annotated[str, msgspec.Meta(max_length=512)]
Detail = Annotated[str, msgspec.Meta(max_length=4096)]


class Execution(enum.StrEnum):
    """Where an action is on the device (hawkBit's ``status.execution``)."""

    CLOSED = "closed"
    PROCEEDING = "proceeding"
    CANCELED = "canceled"
    SCHEDULED = "scheduled"
    REJECTED = "rejected"
    RESUMED = "resumed"
    DOWNLOADED = "downloaded"
    DOWNLOAD = "download"


class Finished(enum.StrEnum):
    """How an action ended (hawkBit's ``status.result.finished``)."""

    SUCCESS = "success"
    FAILURE = "failure"
    NONE = "none"


class Progress(msgspec.Struct):
    """Steps done of steps to do."""

    cnt: int = 0
    of: int = 0


class Result(msgspec.Struct):
    """The result part of a status."""

    finished: Finished = Finished.NONE
    progress: Progress | None = None


class Status(msgspec.Struct):
    """An action's status as the device reports it."""

    execution: Execution
    result: Result = msgspec.field(default_factory=Result)
    details: Annotated[list[Detail], msgspec.Meta(max_length=100)] = msgspec.field(
        default_factory=list
    )
    #: A device-specific status code (hawkBit keeps it with the action's messages).
    code: int | None = None


class Feedback(msgspec.Struct):
    """``POST .../deploymentBase/{actionId}/feedback`` and ``.../cancelAction/{id}/feedback``."""

    status: Status


class AttributeMode(enum.StrEnum):
    """How configData attributes combine with the ones stored."""

    MERGE = "merge"
    REPLACE = "replace"
    REMOVE = "remove"


class ConfigData(msgspec.Struct):
    """``PUT .../configData``: attributes the device reports about itself."""

    data: Annotated[dict[AttributeKey, AttributeValue], msgspec.Meta(max_length=100)]
    mode: AttributeMode = AttributeMode.MERGE
