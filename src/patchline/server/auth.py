"""Management API tokens and roles."""

from __future__ import annotations

import enum
import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from patchline.errors import UsageError
from patchline.store.models import ApiToken


class Role(enum.StrEnum):
    """What a token may do."""

    ADMIN = "admin"
    RELEASE_MANAGER = "release-manager"
    COMPLIANCE = "compliance"
    VIEWER = "viewer"


class Permission(enum.StrEnum):
    """Actions the management API checks."""

    READ = "read"
    RELEASES = "releases"
    POLICIES = "policies"
    AUDIT = "audit"
    TOKENS = "tokens"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.RELEASE_MANAGER: frozenset({Permission.READ, Permission.RELEASES}),
    Role.COMPLIANCE: frozenset({Permission.READ, Permission.POLICIES, Permission.AUDIT}),
    Role.VIEWER: frozenset({Permission.READ}),
}

TOKEN_PREFIX = "pl_"  # noqa: S105 - a prefix that makes leaked tokens easy to scan for


def hash_token(token: str) -> bytes:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).digest()


def create_token(session: Session, name: str, role: Role, now: datetime) -> str:
    """Create a token; return it (shown once, only its hash is kept)."""
    if session.scalars(select(ApiToken).where(ApiToken.name == name)).first() is not None:
        raise UsageError(f"a token named {name!r} exists", hint="pick another name or revoke it")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, role=role.value, token_hash=hash_token(token), created_at=now))
    return token


def revoke_token(session: Session, name: str, now: datetime) -> None:
    """Revoke a token by name."""
    row = session.scalars(select(ApiToken).where(ApiToken.name == name)).first()
    if row is None:
        raise UsageError(f"no token named {name!r}")
    row.revoked_at = now


def role_of(session: Session, token: str) -> tuple[str, Role] | None:
    """The (name, role) of a live token, or None."""
    row = session.scalars(
        select(ApiToken).where(
            ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None)
        )
    ).first()
    return None if row is None else (row.name, Role(row.role))
