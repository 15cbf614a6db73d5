"""Management API tokens and roles."""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from patchline.audit import AuditRecord, append
from patchline.errors import AlreadyWithdrawnError, NotFoundError, UsageError
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
    WEBHOOKS = "webhooks"


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


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token: never its secret nor its hash."""

    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """The token as JSON values."""
        return {
            "name": self.name,
            "role": self.role,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def list_tokens(session: Session) -> list[TokenInfo]:
    """Every token, revoked ones too, oldest first."""
    return [
        TokenInfo(row.name, row.role, row.created_at, row.revoked_at)
        for row in session.scalars(select(ApiToken).order_by(ApiToken.id))
    ]


def revoke_token(session: Session, name: str, now: datetime, actor: str, reason: str = "") -> None:
    """Revoke a token by name and record who did and why in the audit chain; every
    process refuses it from the end of this transaction on (tokens are not cached).

    Raises NotFoundError for no such token, AlreadyWithdrawnError when already revoked.
    """
    row = session.scalars(select(ApiToken).where(ApiToken.name == name)).first()
    if row is None:
        raise NotFoundError(f"no token named {name!r}", hint="patchline token list")
    if row.revoked_at is not None:
        raise AlreadyWithdrawnError(f"token {name!r} was revoked on {row.revoked_at.isoformat()}")
    row.revoked_at = now
    append(
        session,
        [AuditRecord(now, "token-revoke", actor, name, {"role": row.role, "reason": reason})],
    )


def role_of(session: Session, token: str) -> tuple[str, Role] | None:
    """The (name, role) of a live token, or None."""
    return role_of_hash(session, hash_token(token))


def role_of_hash(session: Session, token_hash: bytes) -> tuple[str, Role] | None:
    """The (name, role) of the live token whose stored form is ``token_hash``, or None (a
    console session keeps only this form, and is refused once the token is revoked)."""
    row = session.scalars(
        select(ApiToken).where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
    ).first()
    return None if row is None else (row.name, Role(row.role))
