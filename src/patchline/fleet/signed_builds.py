"""Which builds the image repository signed for a model, as the releases table says."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, select

from patchline.store.models import Release


@dataclass(frozen=True)
class SignedBuild:
    """The signed full release of a build: its target and what it installs."""

    target_path: str
    sha256: str
    security_patch_level: date | None


class SignedBuilds:
    """The builds the image repository signed, by model, looked up in the batch's
    transaction as needed (most batches need none) and kept for the batch."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._found: dict[tuple[str, str], SignedBuild | None] = {}

    def get(self, model: str, build: str) -> SignedBuild | None:
        """The signed full release of ``build`` for ``model``, or None if not signed."""
        key = (model, build)
        if key not in self._found:
            row = self._conn.execute(
                select(Release.target_path, Release.sha256, Release.security_patch_level)
                .where(Release.model == model, Release.build == build, Release.kind == "full")
                .order_by(Release.id)
                .limit(1)
            ).first()
            self._found[key] = None if row is None else SignedBuild(*row)
        return self._found[key]
