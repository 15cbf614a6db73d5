"""The two-person rule: a change that needs a second person is stored as a proposal,
and applied, through the same service the direct path calls, when another person
approves it. The proposal, its outcome and the applied change (naming proposer and
approver) are recorded in the audit chain and emitted as webhook events, each in the
transaction of the change."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from patchline.actions import Action
from patchline.audit import AuditRecord, append
from patchline.errors import NotFoundError, ProposalClosedError, SelfApprovalError
from patchline.store.models import Proposal
from patchline.webhooks.outbox import emit

if TYPE_CHECKING:
    from patchline.repository.publisher import Repository


@dataclass(frozen=True)
class Approved:
    """What an applier is handed: the change as proposed, and who let it through."""

    session: Session
    payload: Mapping[str, Any]
    proposal_id: int
    #: The proposer and approver as the audit chain names them (``token:NAME``, ...).
    proposed_by: str
    approved_by: str
    #: The proposer's own name (a token's name), the author of the change.
    author: str
    now: datetime
    #: Opens the image repository, for actions that sign (None: there is none here).
    open_repository: Callable[[], Repository] | None = None

    def approval(self) -> dict[str, Any]:
        """What the applied change's audit entry says about how it was let through."""
        return {
            "proposal": self.proposal_id,
            "proposed_by": self.proposed_by,
            "approved_by": self.approved_by,
        }


#: Applies an approved change in the caller's transaction; returns what it stored, as JSON.
Applier = Callable[[Approved], dict[str, Any]]


def needs_second_person(required: frozenset[Action], action: Action) -> bool:
    """True when ``action`` is one the settings hold for a second person."""
    return action in required


def proposal_json(row: Proposal) -> dict[str, Any]:
    """A proposal as JSON values."""
    return {
        "id": row.id,
        "action": row.action,
        "state": row.state,
        "summary": row.summary,
        "payload": row.payload,
        "proposed_by": row.proposed_by,
        "proposed_at": row.proposed_at.isoformat(),
        "decided_by": row.decided_by,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "reason": row.reason,
        "result": row.result,
    }


def _event(row: Proposal) -> dict[str, Any]:
    return {k: v for k, v in proposal_json(row).items() if k != "result"}


def propose(
    session: Session,
    action: Action,
    payload: Mapping[str, Any],
    summary: str,
    proposed_by: str,
    now: datetime,
    dry_run: Applier | None = None,
) -> Proposal:
    """Store ``action`` with ``payload`` as a pending proposal by ``proposed_by``, record
    it in the audit chain and emit ``proposal.created``; nothing else changes.

    With ``dry_run`` (the action's applier), the change is first applied in a savepoint
    and rolled back, so that one refused now (an id taken, an invalid amendment) is
    refused with the error the direct path gives instead of being proposed."""
    if dry_run is not None:
        author = str(payload.get("author", proposed_by))
        savepoint = session.begin_nested()
        try:
            dry_run(Approved(session, payload, 0, proposed_by, "(dry run)", author, now))
        finally:
            savepoint.rollback()
    row = Proposal(
        action=action.value,
        payload=dict(payload),
        summary=summary,
        state="pending",
        proposed_by=proposed_by,
        proposed_at=now,
        reason="",
    )
    session.add(row)
    session.flush()
    append(
        session,
        [
            AuditRecord(
                now,
                "proposal",
                proposed_by,
                f"proposal-{row.id}",
                {"state": "pending", "action": row.action, "summary": summary, **row.payload},
            )
        ],
    )
    emit(session, "proposal.created", _event(row), now)
    return row


def _pending(session: Session, proposal_id: int) -> Proposal:
    query = select(Proposal).where(Proposal.id == proposal_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = session.scalars(query).first()
    if row is None:
        raise NotFoundError(f"no proposal {proposal_id}", hint="patchline proposal list")
    if row.state != "pending":
        raise ProposalClosedError(
            f"proposal {proposal_id} was already {row.state} by {row.decided_by}"
        )
    return row


def approve(
    session: Session,
    proposal_id: int,
    approved_by: str,
    now: datetime,
    appliers: Mapping[Action, Applier],
    open_repository: Callable[[], Repository] | None = None,
) -> Proposal:
    """Apply a pending proposal through its action's applier, as ``approved_by``, and
    mark it approved, recording both names in the audit chain; all in the caller's
    transaction (a refused change leaves the proposal pending).

    Raises NotFoundError, ProposalClosedError, SelfApprovalError (the proposer cannot
    approve their own), and whatever the applier raises."""
    row = _pending(session, proposal_id)
    if row.proposed_by == approved_by:
        raise SelfApprovalError(
            f"proposal {proposal_id} was proposed by {approved_by}: "
            "a second person must approve it",
            hint="ask another token holder allowed to do this to approve it",
        )
    author = str(row.payload.get("author", row.proposed_by))
    approved = Approved(
        session, row.payload, row.id, row.proposed_by, approved_by, author, now, open_repository
    )
    result = appliers[Action(row.action)](approved)
    row.state, row.decided_by, row.decided_at, row.result = "approved", approved_by, now, result
    _decided(session, row, now)
    return row


def reject(
    session: Session, proposal_id: int, rejected_by: str, reason: str, now: datetime
) -> Proposal:
    """Close a pending proposal without applying it (its proposer may withdraw it this
    way too), recording who and why in the audit chain.

    Raises NotFoundError, ProposalClosedError."""
    row = _pending(session, proposal_id)
    row.state, row.decided_by, row.decided_at, row.reason = "rejected", rejected_by, now, reason
    _decided(session, row, now)
    return row


def _decided(session: Session, row: Proposal, now: datetime) -> None:
    decided_by = row.decided_by or ""
    payload = {
        "state": row.state,
        "action": row.action,
        "proposed_by": row.proposed_by,
        f"{row.state}_by": decided_by,
        "reason": row.reason,
    }
    append(session, [AuditRecord(now, "proposal", decided_by, f"proposal-{row.id}", payload)])
    emit(session, f"proposal.{row.state}", _event(row), now)


def list_proposals(session: Session, state: str | None = None) -> list[Proposal]:
    """Proposals, newest first; with ``state``, only those (pending, approved, rejected)."""
    query = select(Proposal).order_by(Proposal.id.desc())
    if state is not None:
        query = query.where(Proposal.state == state)
    return list(session.scalars(query))


def get_proposal(session: Session, proposal_id: int) -> Proposal:
    """One proposal; raises NotFoundError."""
    row = session.get(Proposal, proposal_id)
    if row is None:
        raise NotFoundError(f"no proposal {proposal_id}", hint="patchline proposal list")
    return row
