"""Re-signing roles before they expire, and mending roles whose signatures broke."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tuf.api.metadata import Metadata

from patchline.repository.config import TOP_LEVEL_ROLES
from patchline.repository.publisher import Repository
from patchline.repository.state import RepositoryState

ONLINE_ROLES = ("snapshot", "timestamp")


@dataclass(frozen=True)
class RefreshResult:
    """Which roles were re-signed, with the reason for each."""

    resigned: dict[str, str]


def roles_due(repo: Repository, state: RepositoryState, now: datetime) -> dict[str, str]:
    """Roles that need a new signature now, each with why.

    A role is due when less than half of its validity period is left, or when its
    signatures no longer meet its threshold (e.g. after a crash mid-rotation).
    """
    due: dict[str, str] = {}
    for role, md in state.signed_roles():
        period = repo.config.expiries.for_role(role)
        left = md.signed.expires - now
        if left < period / 2:
            due[role] = (
                "expired"
                if left.total_seconds() <= 0
                else f"expires {md.signed.expires:%Y-%m-%d %H:%M} UTC"
            )
        elif not signatures_valid(state, role, md):
            due[role] = "signatures do not meet the threshold"
    return due


def signatures_valid(state: RepositoryState, role: str, md: Metadata[Any]) -> bool:
    """True when ``md`` carries a threshold of valid signatures from its delegator."""
    delegator = state.root.signed if role in TOP_LEVEL_ROLES else state.delegator(role)
    return delegator.get_verification_result(role, md.signed_bytes, md.signatures).verified


def refresh(repo: Repository, *, force_online: bool = False) -> RefreshResult:
    """Re-sign every due role (and snapshot and timestamp when ``force_online``).

    Roles downstream of a re-signed role (snapshot, timestamp) are re-signed too.
    """
    with repo.transaction() as tx:
        due = roles_due(repo, tx.state, repo.clock.now())
        if force_online:
            for role in ONLINE_ROLES:
                due.setdefault(role, "asked to re-sign")
        for role in due:
            tx.resign(role)
        if due:
            tx.commit()
        return RefreshResult(due)
