"""Managing webhook subscriptions and their deliveries: the one path the CLI and the
management API both take. Each change is recorded in the audit chain (never a secret)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from patchline.audit import AuditRecord, append
from patchline.errors import NotFoundError, UsageError
from patchline.store.models import WebhookMessage, WebhookSubscription
from patchline.webhooks.events import EVENT_TYPES, unknown_events
from patchline.webhooks.outbox import subscription_index
from patchline.webhooks.signing import check_secret, new_secret


class InvalidSubscriptionError(UsageError):
    """A subscription's URL, events or secret are not valid (nothing was stored)."""


@dataclass(frozen=True)
class NewSubscription:
    """A subscription just added, with its secret (shown this once)."""

    row: WebhookSubscription
    secret: str


def _http_with_host(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # an unclosed "[" of an IPv6 address, a port that is no number
        return False


def check_url(url: str) -> str:
    """``url`` when it is an http(s) URL with a host, without control characters or
    spaces; else InvalidSubscriptionError."""
    if not (url.isprintable() and not any(c.isspace() for c in url) and _http_with_host(url)):
        raise InvalidSubscriptionError(
            f"{url!r} is not an http(s) URL with a host", hint="e.g. https://hooks.example/ota"
        )
    return url


def check_events(events: list[str]) -> list[str]:
    """``events`` without repeats when each is an event type; else the unknown ones named."""
    if not events:
        raise InvalidSubscriptionError("a subscription needs at least one event")
    unknown = unknown_events(events)
    if unknown:
        raise InvalidSubscriptionError(
            f"unknown event(s): {', '.join(unknown)}",
            hint=f"events are: {', '.join(EVENT_TYPES)}",
        )
    return list(dict.fromkeys(events))


def add_subscription(
    session: Session,
    url: str,
    events: list[str],
    actor: str,
    now: datetime,
    secret: str | None = None,
    description: str = "",
) -> NewSubscription:
    """Subscribe ``url`` to ``events``, signed with ``secret`` (default: a new one).

    Raises InvalidSubscriptionError (nothing stored) for a bad URL, event or secret."""
    check_url(url)
    events = check_events(events)
    if secret is None:
        secret = new_secret()
    else:
        try:
            check_secret(secret)
        except ValueError as exc:
            raise InvalidSubscriptionError(str(exc), hint="omit it to get a new one") from None
    row = WebhookSubscription(
        url=url,
        events=events,
        secret=secret,
        description=description,
        created_at=now,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    append(
        session,
        [AuditRecord(now, "webhook-subscribe", actor, str(row.id), {"url": url, "events": events})],
    )
    _invalidate_on_commit(session)
    return NewSubscription(row, secret)


def _invalidate_on_commit(session: Session) -> None:
    """Have this process re-read the subscriptions once this transaction is committed."""
    index = subscription_index(session.get_bind().engine)
    event.listen(session, "after_commit", lambda _s: index.invalidate(), once=True)


def list_subscriptions(session: Session) -> list[WebhookSubscription]:
    """The live subscriptions, oldest first."""
    query = select(WebhookSubscription).where(WebhookSubscription.removed_at.is_(None))
    return list(session.scalars(query.order_by(WebhookSubscription.id)))


def remove_subscription(
    session: Session, sub_id: int, actor: str, now: datetime
) -> WebhookSubscription:
    """Stop sending to a subscription; its undelivered messages fail on their next attempt.

    Raises NotFoundError for no such live subscription."""
    row = session.get(WebhookSubscription, sub_id)
    if row is None or row.removed_at is not None:
        raise NotFoundError(f"no webhook subscription {sub_id}", hint="patchline webhook list")
    row.removed_at = now
    append(session, [AuditRecord(now, "webhook-remove", actor, str(sub_id), {"url": row.url})])
    _invalidate_on_commit(session)
    return row


def list_deliveries(
    session: Session, state: str | None = None, limit: int = 100
) -> list[WebhookMessage]:
    """Outbox messages, newest first; with ``state``, only those (pending, delivered,
    failed)."""
    query = select(WebhookMessage).order_by(WebhookMessage.id.desc()).limit(limit)
    if state is not None:
        query = query.where(WebhookMessage.state == state)
    return list(session.scalars(query))


def resend(session: Session, ids: list[int] | None, now: datetime) -> int:
    """Send messages again from now, with a fresh count of attempts: those with ``ids``,
    or (None) every failed one; return how many. Raises NotFoundError for an unknown id."""
    query = update(WebhookMessage).values(
        state="pending", attempts=0, next_attempt_at=now, delivered_at=None
    )
    if ids is None:
        return session.execute(query.where(WebhookMessage.state == "failed")).rowcount  # type: ignore[attr-defined, no-any-return]
    known = set(session.scalars(select(WebhookMessage.id).where(WebhookMessage.id.in_(ids))))
    missing = sorted(set(ids) - known)
    if missing:
        raise NotFoundError(
            f"no webhook message {', '.join(map(str, missing))}",
            hint="patchline webhook deliveries",
        )
    return session.execute(query.where(WebhookMessage.id.in_(ids))).rowcount  # type: ignore[attr-defined, no-any-return]
