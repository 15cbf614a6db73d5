"""Re-signing published releases with new eligibility.

A mirror or an SD card serves whatever was signed. When the rules tighten after a
release was signed (a ban from a date on, a licence that covers fewer devices), the
signer re-signs the release's target with the narrower eligibility; when an amendment
extends the rule a release was signed under, with the wider one naming the amendment.
Devices read it on their next refresh, from any mirror, and the director reads it on
its next sync.
Length, hashes and path stay the same: only the signed ``custom`` field changes, so no
image byte moves and no device re-downloads anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from tuf.api.metadata import Targets

from patchline.repository.publisher import Repository
from patchline.repository.state import archive_role
from patchline.transport.releases import SignedRelease, signed_releases
from patchline.wire.release import Eligibility, ReleaseInfo


@dataclass(frozen=True)
class Restricted:
    """One release whose signed eligibility changed."""

    target_path: str
    model: str
    build: str
    before: Eligibility
    after: Eligibility


def restrict_releases(
    repo: Repository, eligibility_for: Callable[[ReleaseInfo], Eligibility]
) -> list[Restricted]:
    """Re-sign, in one publish, every full-image release of every model (current and
    archived) whose eligibility ``eligibility_for`` changes; return what changed.

    ``eligibility_for`` must stay within what the rules allow (``patchline.policy.
    authorise.eligibility_under_rules`` only narrows; ``eligibility_resigned`` widens only
    under an amendment). Nothing is published when nothing changes.
    """
    changed: list[Restricted] = []
    with repo.transaction() as tx:
        roles: list[str] = []
        for model in tx.state.model_names():
            for role in (model, archive_role(model), *tx.state.archive_bins(model)):
                found = _restrict_role(tx.state.delegated(role).signed, eligibility_for)
                if found:
                    tx.resign(role)
                    roles.append(role)
                    changed += found
        if changed:
            tx.require_signers([*roles, "snapshot", "timestamp"])
            tx.commit()
    return changed


def _restrict_role(
    role: Targets, eligibility_for: Callable[[ReleaseInfo], Eligibility]
) -> list[Restricted]:
    changed = []
    for found in signed_releases(role.targets):
        if not isinstance(found, SignedRelease):
            continue
        info = found.info
        after = eligibility_for(info)
        if after == info.eligibility:
            continue
        found.target.unrecognized_fields["custom"] = replace(info, eligibility=after).to_custom()
        changed.append(Restricted(found.path, info.model, info.build, info.eligibility, after))
    return changed
