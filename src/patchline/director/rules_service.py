"""Writing delivery rules into the server's database: a new rule, an amendment from a
date on (back-dating said with a reason), and reading them as known on a day. Each
change is checked by ``patchline.policy`` before anything is stored, recorded in the
audit chain in the same transaction, and bumps the catalog version so every server
process reloads the rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from patchline.audit import AuditRecord, append
from patchline.director.catalog import amendment_of, aware
from patchline.director.releases_sync import bump_catalog
from patchline.errors import NotFoundError, PolicyError, UsageError
from patchline.policy.rules import Amendment, Rule, rule_history
from patchline.store.models import Policy, PolicyAmendment
from patchline.webhooks.outbox import emit


class RuleExistsError(UsageError, PolicyError):
    """A new rule was given the id of a rule that exists (amend that one instead)."""


@dataclass(frozen=True)
class StoredAmendment:
    """An amendment as stored: its row, what it means, and both of its times in words."""

    row: PolicyAmendment
    amendment: Amendment
    summary: str


@dataclass(frozen=True)
class StoredRule:
    """A rule as first written, with its amendments in the order they were recorded."""

    row: Policy
    amendments: tuple[StoredAmendment, ...]


def recording_summary(amendment: Amendment, recorded: datetime) -> str:
    """Both times of an amendment in words, saying so when it is back-dated."""
    effective = amendment.effective_from.isoformat()
    when = f"effective {effective}, recorded {recorded.date().isoformat()}"
    if amendment.backdated:
        return f"back-dated: {when}; reason: {amendment.reason}"
    return when


def _stored(row: PolicyAmendment) -> StoredAmendment:
    amendment = amendment_of(row)
    recorded = amendment.recorded_at
    assert recorded is not None  # amendment_of always sets it
    return StoredAmendment(row, amendment, recording_summary(amendment, recorded))


def list_rules(session: Session, known_on: date | None = None) -> list[StoredRule]:
    """Every rule with its amendments, ordered by id; with ``known_on``, only the rules
    and amendments recorded by the end of that day."""

    def known(instant: datetime) -> bool:
        return known_on is None or aware(instant).date() <= known_on

    amendments: dict[str, list[StoredAmendment]] = {}
    for a in session.scalars(select(PolicyAmendment).order_by(PolicyAmendment.id)):
        if known(a.recorded_at):
            amendments.setdefault(a.policy_id, []).append(_stored(a))
    return [
        StoredRule(p, tuple(amendments.get(p.id, [])))
        for p in session.scalars(select(Policy).order_by(Policy.id))
        if known(p.created_at)
    ]


def create_rule(
    session: Session,
    rule: Rule,
    author: str,
    actor: str,
    now: datetime,
    approval: Mapping[str, Any] | None = None,
) -> StoredRule:
    """Store a new rule written by ``author``, record it (by ``actor``, with the
    ``approval`` that let it through, if any) in the audit chain and emit
    ``rule.created``, all in the caller's transaction. Raises RuleExistsError when a
    rule with its id exists."""
    if session.get(Policy, rule.id) is not None:
        raise RuleExistsError(f"rule {rule.id} exists; amend it instead")
    row = Policy(
        id=rule.id, title=rule.title, body=rule.to_json(), created_at=now, created_by=author
    )
    session.add(row)
    bump_catalog(session)
    approved = {"approval": dict(approval)} if approval else {}
    append(session, [AuditRecord(now, "policy", actor, rule.id, {**rule.to_json(), **approved})])
    emit(session, "rule.created", {"rule": rule.to_json(), "by": actor, **approved}, now)
    return StoredRule(row, ())


def amend_rule(
    session: Session,
    amendment: Amendment,
    author: str,
    actor: str,
    now: datetime,
    approval: Mapping[str, Any] | None = None,
) -> StoredRule:
    """Store ``amendment`` (recorded ``now`` by ``author``) of its rule, record it (by
    ``actor``, with the ``approval`` that let it through, if any) in the audit chain and
    emit ``rule.amended``, in the caller's transaction; return the rule with all its
    amendments.

    Raises NotFoundError for no such rule; InvalidAmendmentError (nothing stored) for a
    back-dated amendment that does not say so with a reason, or one that would leave the
    rule invalid on some day of its history.
    """
    rule_id = amendment.rule_id
    row = session.get(Policy, rule_id)
    if row is None:
        raise NotFoundError(f"no rule {rule_id}")
    amendment.check_recording(now)
    of_rule = select(PolicyAmendment).where(PolicyAmendment.policy_id == rule_id)
    earlier = [amendment_of(a) for a in session.scalars(of_rule)]
    rule_history(Rule.from_json(row.body), [*earlier, amendment])
    stored = PolicyAmendment(
        policy_id=rule_id,
        effective_from=amendment.effective_from,
        changes=dict(amendment.changes),
        note=amendment.note,
        created_at=now,
        created_by=author,
        recorded_at=now,
        backdated=amendment.backdated,
        reason=amendment.reason,
    )
    session.add(stored)
    session.flush()
    bump_catalog(session)
    recorded = amendment_of(stored)
    payload = {**recorded.to_json(), "summary": recording_summary(recorded, now)}
    if approval:
        payload["approval"] = dict(approval)
    append(session, [AuditRecord(now, "policy-amendment", actor, rule_id, payload)])
    emit(session, "rule.amended", {"rule_id": rule_id, "amendment": payload, "by": actor}, now)
    amendments = session.scalars(of_rule.order_by(PolicyAmendment.id))
    return StoredRule(row, tuple(_stored(a) for a in amendments))
