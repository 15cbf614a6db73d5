"""Publishing a release, optionally under the delivery rules: the one path the CLI
(``patchline release add``) and the management API (``POST /api/releases``) both take."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from sqlalchemy.orm import Session

from patchline.director.catalog import load_catalog
from patchline.policy.authorise import authorise_with
from patchline.policy.rules import Amendment, Rule
from patchline.repository.publisher import Repository
from patchline.repository.releases import (
    DeltaProgress,
    PublishedRelease,
    ReleaseRequest,
    add_release,
)


@dataclass(frozen=True)
class DeliveryRules:
    """Every delivery rule and amendment recorded in the server's database."""

    rules: tuple[Rule, ...]
    amendments: tuple[Amendment, ...]


def delivery_rules(session: Session) -> DeliveryRules:
    """The delivery rules and their amendments as the database holds them now."""
    catalog = load_catalog(session)
    return DeliveryRules(catalog.rules, catalog.amendments)


@dataclass(frozen=True)
class UnderRules:
    """A release request narrowed to what the rules allow, and why."""

    request: ReleaseRequest
    #: The allowing rule and every rule that narrowed it, in sentences.
    reasons: tuple[str, ...]


def under_rules(request: ReleaseRequest, rules: DeliveryRules, day: date) -> UnderRules:
    """``request`` with the limits (and name) of the rule in force on ``day`` that allows
    it signed into its eligibility, as well as the ones given.

    Raises NotAuthorisedError naming the rule when no rule in force allows it.
    """
    granted = authorise_with(
        request.eligibility,
        model=request.model,
        update_class=request.update_class,
        rules=rules.rules,
        amendments=rules.amendments,
        day=day,
    )
    return UnderRules(replace(request, eligibility=granted.eligibility), granted.reasons)


@dataclass(frozen=True)
class Publication:
    """A published release and, when signed under the rules, why it was allowed."""

    release: PublishedRelease
    reasons: tuple[str, ...] = ()


def publish(
    repo: Repository,
    request: ReleaseRequest,
    *,
    rules: DeliveryRules | None = None,
    day: date | None = None,
    progress: DeltaProgress | None = None,
) -> Publication:
    """Sign and publish ``request`` into ``repo``; with ``rules``, only if a rule in force
    on ``day`` (default: today by the repository's clock) allows it, with that rule's
    limits signed in (see ``under_rules``). On any refusal the repository is unchanged."""
    reasons: tuple[str, ...] = ()
    if rules is not None:
        signed = under_rules(request, rules, day or repo.clock.now().date())
        request, reasons = signed.request, signed.reasons
    return Publication(add_release(repo, request, progress), reasons)
