"""Re-signing a repository's releases under the delivery rules in force on a day.

What a release may keep is the rules engine's answer (``patchline.policy.authorise``);
this module applies it to every release of the repository in one publish.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from patchline.policy.authorise import eligibility_resigned, eligibility_under_rules
from patchline.policy.rules import Amendment, Rule
from patchline.repository.publisher import Repository
from patchline.repository.restrict import Restricted, restrict_releases


def resign_to_rules(
    repo: Repository,
    *,
    rules: Iterable[Rule],
    amendments: Iterable[Amendment] = (),
    day: date,
) -> list[Restricted]:
    """Re-sign every release of ``repo`` whose eligibility ``eligibility_resigned`` changes
    on ``day`` (narrower or, under an amendment, wider), in one publish; return what
    changed (nothing is published when nothing changes)."""
    known_rules, known_amendments = list(rules), list(amendments)
    return restrict_releases(
        repo,
        lambda info: eligibility_resigned(
            info, rules=known_rules, amendments=known_amendments, day=day
        ),
    )


def restrict_to_rules(
    repo: Repository,
    *,
    rules: Iterable[Rule],
    amendments: Iterable[Amendment] = (),
    day: date,
) -> list[Restricted]:
    """Re-sign every release of ``repo`` the rules in force on ``day`` narrow (one
    publish; nothing when none); return what changed."""
    known_rules, known_amendments = list(rules), list(amendments)
    return restrict_releases(
        repo,
        lambda info: eligibility_under_rules(
            info, rules=known_rules, amendments=known_amendments, day=day
        ),
    )
