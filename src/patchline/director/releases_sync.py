"""Copying the image repository's signed targets into the releases table.

The repository's public tree is the truth about what is signed; the server keeps a
row per target so the director and the management API can query them. Rows are added
for new targets; a known release's row changes only when its signed eligibility was
re-signed since (``patchline.repository.restrict``), and the audit entry says whether it
was widened or narrowed and under which rule and amendment; offer settings are the
server's.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from patchline.audit import AuditRecord, append
from patchline.repository.state import RepositoryState
from patchline.store.models import CatalogVersion, Release
from patchline.transport.releases import SignedRelease, signed_releases
from patchline.wire.device_api import Network
from patchline.wire.release import Eligibility

DEFAULT_NETWORKS = [n.value for n in Network if n is not Network.OFFLINE]


def bump_catalog(session: Session) -> None:
    """Tell every server process to reload releases and rules."""
    changed = session.execute(
        update(CatalogVersion)
        .where(CatalogVersion.id == 1)
        .values(version=CatalogVersion.version + 1)
    )
    if changed.rowcount == 0:  # type: ignore[attr-defined]
        if session.get_bind().dialect.name == "postgresql":
            session.execute(
                pg_insert(CatalogVersion)
                .values(id=1, version=1)
                .on_conflict_do_update(
                    index_elements=["id"], set_={"version": CatalogVersion.version + 1}
                )
            )
        else:
            session.add(CatalogVersion(id=1, version=1))
            session.flush()


def catalog_version(session: Session) -> int:
    """The current catalog version (0 before any change)."""
    value = session.scalar(select(CatalogVersion.version).where(CatalogVersion.id == 1))
    return int(value or 0)


def _rows_of(state: RepositoryState, now: datetime) -> Iterable[dict[str, Any]]:
    for role in state.delegated_roles():
        for found in signed_releases(state.delegated(role).signed.targets):
            base = {
                "target_path": found.path,
                "length": found.target.length,
                "sha256": found.target.hashes.get("sha256", ""),
                "published_at": now,
                "min_battery_percent": 20,
                "allowed_networks": DEFAULT_NETWORKS,
            }
            if isinstance(found, SignedRelease):
                info = found.info
                yield {
                    **base,
                    "kind": "full",
                    "model": info.model,
                    "build": info.build,
                    "security_patch_level": info.security_patch_level,
                    "update_class": info.update_class.value,
                    "build_time": info.build_time,
                    "eligibility": info.eligibility.to_json(),
                    "notes": info.notes,
                }
            else:
                delta = found.info
                yield {
                    **base,
                    "kind": "delta",
                    "model": delta.model,
                    "build": delta.build,
                    "source_build": delta.source_build,
                    "source_sha256": delta.source_sha256,
                    "full_target": delta.full_target,
                    "eligibility": {},
                }


def eligibility_change(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The audit payload for a release re-signed with new eligibility: both JSON forms,
    how it changed ("widened", "narrowed", "changed", "unchanged"), the rule it is now
    signed under and the amendment named, if any, with a sentence saying so."""
    old, new = Eligibility.from_json(before or {}), Eligibility.from_json(after)
    change = new.change_from(old)
    sentence = f"eligibility {change}"
    if new.rule:
        sentence += f" under rule {new.rule}"
    if new.amendment is not None:
        sentence += f" ({new.amendment.label})"
    return {
        "before": before,
        "after": after,
        "change": change,
        "rule": new.rule or None,
        "amendment": new.amendment.to_json() if new.amendment is not None else None,
        "summary": sentence,
    }


def sync_releases(session: Session, state: RepositoryState, now: datetime) -> list[str]:
    """Add a row for every signed target not yet known, and take the signed eligibility
    of known releases re-signed since; return the new and changed target paths.

    Safe with several processes syncing at once: a target another process inserted
    meanwhile is skipped, not an error, and each "release" or "release-eligibility"
    audit entry is written once, by the process whose transaction made the change.
    """
    known = dict(session.execute(select(Release.target_path, Release.eligibility)).tuples().all())
    rows = list(_rows_of(state, now))
    new = [row for row in rows if row["target_path"] not in known]
    resigned = {
        row["target_path"]: row
        for row in rows
        if row["target_path"] in known
        and row["kind"] == "full"
        and known[row["target_path"]] != row["eligibility"]
    }
    changed = _take_eligibility(session, resigned)
    inserted = _insert_new(session, new)
    added = [row for row in new if row["target_path"] in inserted]
    if not added and not changed:
        return []
    append(
        session,
        [
            AuditRecord(
                at=now,
                kind="release-eligibility",
                actor="repository",
                subject=path,
                payload=eligibility_change(before, resigned[path]["eligibility"]),
            )
            for path, before in changed
        ],
    )
    append(
        session,
        [
            AuditRecord(
                at=now,
                kind="release",
                actor="repository",
                subject=row["target_path"],
                payload={
                    "model": row["model"],
                    "build": row["build"],
                    "kind": row["kind"],
                    "sha256": row["sha256"],
                    "length": row["length"],
                    "update_class": row.get("update_class"),
                },
            )
            for row in added
        ],
    )
    bump_catalog(session)
    return [row["target_path"] for row in added] + [path for path, _ in changed]


def _take_eligibility(
    session: Session, resigned: dict[str, dict[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """Store the signed eligibility of re-signed releases; return (path, eligibility
    before) for each row this transaction changed. The rows are re-read under a row lock,
    so of two processes syncing the same change only the first changes and reports it."""
    if not resigned:
        return []
    locked = session.execute(
        select(Release.target_path, Release.eligibility)
        .where(Release.target_path.in_(sorted(resigned)))
        .order_by(Release.target_path)
        .with_for_update()
    ).tuples()
    changed = []
    for path, before in locked.all():
        after = resigned[path]["eligibility"]
        if before == after:
            continue  # another process took it first
        session.execute(
            update(Release).where(Release.target_path == path).values(eligibility=after)
        )
        changed.append((path, before))
    return changed


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert ``rows``, skipping any target already stored (another process may have
    inserted it since it was read); return the target paths this transaction inserted."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    insert_for = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert_for(Release)
        .on_conflict_do_nothing(index_elements=["target_path"])
        .returning(Release.target_path)
    )
    return set(session.scalars(statement, rows))
