"""A repository's health at a glance: roles, keys, thresholds, expiries, releases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from patchline.repository.publisher import Repository
from patchline.repository.refresh import signatures_valid
from patchline.repository.releases import releases_of

WARN_WITHIN = timedelta(days=7)


@dataclass(frozen=True)
class RoleStatus:
    """One role's version, keys and expiry."""

    name: str
    version: int
    threshold: int
    keyids: tuple[str, ...]
    keys_here: int
    expires: datetime
    signatures_ok: bool


@dataclass(frozen=True)
class ModelStatus:
    """One model's releases."""

    name: str
    releases: int
    newest_build: str | None
    newest_patch_level: str | None


@dataclass(frozen=True)
class RepositoryStatus:
    """Everything ``patchline repo status`` shows."""

    roles: list[RoleStatus]
    models: list[ModelStatus]
    warnings: list[str]


def repository_status(repo: Repository) -> RepositoryStatus:
    """Read the published state and report it, with a warning for each problem found."""
    state = repo.state()
    now = repo.clock.now()
    roles: list[RoleStatus] = []
    warnings: list[str] = []
    for name, md in state.signed_roles():
        role = (
            state.root.signed.roles[name]
            if name in state.root.signed.roles
            else state.delegated_role(name)
        )
        keys_here = sum(repo.keyring.has(k) for k in role.keyids)
        ok = signatures_valid(state, name, md)
        roles.append(
            RoleStatus(
                name,
                md.signed.version,
                role.threshold,
                tuple(role.keyids),
                keys_here,
                md.signed.expires,
                ok,
            )
        )
        left = md.signed.expires - now
        # Within a week; for short-lived online roles, once half their period is gone
        # (a fresh 1-day timestamp is normal, not a warning).
        warn_within = min(WARN_WITHIN, repo.config.expiries.for_role(name) / 2)
        if left <= timedelta(0):
            warnings.append(f"{name} expired on {md.signed.expires:%Y-%m-%d %H:%M} UTC")
        elif left < warn_within:
            warnings.append(
                f"{name} expires in {_human(left)} ({md.signed.expires:%Y-%m-%d %H:%M} UTC)"
            )
        if not ok:
            warnings.append(f"{name} signatures do not meet its threshold")
        if keys_here < role.threshold:
            warnings.append(
                f"{name}: only {keys_here} of the {role.threshold} keys needed are in the keyring"
            )
    models = []
    for name in state.model_names():
        releases = releases_of(state, name)
        newest = releases[-1].info if releases else None
        models.append(
            ModelStatus(
                name,
                len(releases),
                newest.build if newest else None,
                newest.security_patch_level.isoformat() if newest else None,
            )
        )
    return RepositoryStatus(roles, models, warnings)


def _human(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    if hours >= 48:
        return f"{hours // 24} days"
    if hours >= 1:
        return f"{hours} hours"
    return f"{int(delta.total_seconds() // 60)} minutes"
