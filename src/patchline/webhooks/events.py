"""The events a webhook subscription can ask for, by name."""

from __future__ import annotations

#: Every event type, with what it reports.
EVENT_TYPES: dict[str, str] = {
    "rule.created": "a delivery rule was written",
    "rule.amended": "a delivery rule was amended",
    "install.booted-healthy": "a device booted a new build healthy",
    "install.rolled-back": "a device rolled back to its previous build",
    "install.failed": "a device's install failed",
    "proposal.created": "a change was held for a second person",
    "proposal.approved": "a second person approved a held change and it was applied",
    "proposal.rejected": "a held change was rejected",
    "rollout.started": "a staged rollout started",
    "rollout.phase-advanced": "a staged rollout widened to its next phase",
    "rollout.halted": "a staged rollout halted on its health gate",
    "rollout.paused": "a staged rollout was paused",
    "rollout.resumed": "a staged rollout was resumed",
    "rollout.aborted": "a staged rollout was aborted",
    "rollout.completed": "a staged rollout reached every phase's devices",
}

#: The install report statuses that are events, and their event names.
REPORT_EVENTS: dict[str, str] = {
    "booted-healthy": "install.booted-healthy",
    "rolled-back": "install.rolled-back",
    "failed": "install.failed",
}


def unknown_events(names: list[str]) -> list[str]:
    """The names in ``names`` that are not event types."""
    return [n for n in names if n not in EVENT_TYPES]
