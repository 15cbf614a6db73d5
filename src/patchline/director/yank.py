"""Withdrawing (yanking) a release: the director stops offering it at once, on every
process; devices already on it keep it; the release stays listed, marked yanked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from patchline.audit import AuditRecord, append
from patchline.director.releases_sync import bump_catalog
from patchline.errors import AlreadyWithdrawnError, NotFoundError
from patchline.repository.lapse import lapse_release
from patchline.repository.publisher import Repository
from patchline.repository.restrict import Restricted
from patchline.store.models import Release


def find_release(session: Session, model: str, build: str) -> Release:
    """The full-image release of ``model`` build ``build``; NotFoundError when none."""
    row = session.scalars(
        select(Release).where(
            Release.model == model, Release.build == build, Release.kind == "full"
        )
    ).first()
    if row is None:
        raise NotFoundError(
            f"no release {build} of {model} on the server",
            hint="sync the server (POST /api/releases/sync) or check the build",
        )
    return row


def yank(session: Session, release_id: int, reason: str, actor: str, now: datetime) -> Release:
    """Mark the full-image release ``release_id`` yanked with ``reason``, record it in
    the audit chain and bump the catalog version so every process stops offering it.

    Raises NotFoundError for no such full-image release, AlreadyWithdrawnError when it
    is yanked already.
    """
    row = session.get(Release, release_id)
    if row is None or row.kind != "full":
        raise NotFoundError(f"no release {release_id}", hint="deltas go with their release")
    if row.yanked_at is not None:
        raise AlreadyWithdrawnError(
            f"release {row.target_path} was yanked on {row.yanked_at.isoformat()}"
        )
    row.yanked_at = now
    row.yank_reason = reason
    append(
        session,
        [
            AuditRecord(
                now,
                "yank",
                actor,
                row.target_path,
                {"model": row.model, "build": row.build, "sha256": row.sha256, "reason": reason},
            )
        ],
    )
    bump_catalog(session)
    return row


@dataclass(frozen=True)
class Withdrawal:
    """A yanked release, and what was re-signed to lapse it."""

    release: Release
    lapsed: list[Restricted]


def withdraw(
    session: Session,
    release_id: int,
    reason: str,
    actor: str,
    now: datetime,
    lapse_in: Callable[[], Repository] | None = None,
) -> Withdrawal:
    """Yank the release (see ``yank``) and, with ``lapse_in`` (the repository, opened only
    once the yank is allowed), re-sign it valid until today so agents refuse it from
    mirrors and SD cards too. Signed inside the caller's transaction: when signing
    fails, the yank is not stored. Raises what ``yank`` and signing raise."""
    row = yank(session, release_id, reason, actor, now)
    lapsed = [] if lapse_in is None else lapse_release(lapse_in(), row.model, row.build, now.date())
    return Withdrawal(row, lapsed)
