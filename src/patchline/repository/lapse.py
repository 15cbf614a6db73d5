"""Re-signing a yanked release as lapsed, so devices refuse it from any mirror or card.

Only the signed eligibility changes (``valid_until`` brought forward to the yank date,
never later than it was); the image, its length and hashes stay, see
``patchline.repository.restrict``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from patchline.repository.publisher import Repository
from patchline.repository.restrict import Restricted, restrict_releases
from patchline.wire.release import Eligibility, ReleaseInfo


def lapse_release(repo: Repository, model: str, build: str, day: date) -> list[Restricted]:
    """Re-sign build ``build`` of ``model`` valid until ``day`` (installable strictly
    before it); return what changed (nothing when it already lapsed by then)."""

    def lapsed(info: ReleaseInfo) -> Eligibility:
        current = info.eligibility
        if info.model != model or info.build != build:
            return current
        if current.valid_until is not None and current.valid_until <= day:
            return current
        return replace(current, valid_until=day)

    return restrict_releases(repo, lapsed)
