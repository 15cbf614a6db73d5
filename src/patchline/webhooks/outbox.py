"""The outbox: events written in the transaction of the change they report.

``emit`` adds one row per subscription that wants the event, with one INSERT, and none
when no subscription wants it; which subscriptions want what is cached per database for
a second (a change made through this process is seen at once). The deliverer
(``patchline.webhooks.deliver``) sends the rows after the transaction commits, so an
event is sent if and only if its change was stored.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.orm import Session

from patchline.store.models import WebhookMessage, WebhookSubscription
from patchline.webhooks.events import EVENT_TYPES

#: How long a process trusts its cached list of subscriptions (seconds).
SUBSCRIPTIONS_TTL = 1.0


@dataclass(frozen=True)
class Event:
    """One event to emit: its type, what it says, and when it happened."""

    event_type: str
    payload: Mapping[str, Any]
    at: datetime


class SubscriptionIndex:
    """Which live subscriptions want each event type, as one process last read them."""

    def __init__(self, ttl: float = SUBSCRIPTIONS_TTL) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._by_event: dict[str, tuple[int, ...]] = {}

    def wanting(self, conn: Connection, event_type: str) -> tuple[int, ...]:
        """The ids of the live subscriptions that want ``event_type``."""
        with self._lock:
            if time.monotonic() - self._read_at > self._ttl:
                self._by_event = _read_index(conn)
                self._read_at = time.monotonic()
            return self._by_event.get(event_type, ())

    def invalidate(self) -> None:
        """Forget the cached list: the next emit reads the table again."""
        with self._lock:
            self._read_at = float("-inf")


def _read_index(conn: Connection) -> dict[str, tuple[int, ...]]:
    query = select(WebhookSubscription.id, WebhookSubscription.events).where(
        WebhookSubscription.removed_at.is_(None)
    )
    by_event: dict[str, list[int]] = {}
    for sub_id, events in conn.execute(query):
        for event_type in events:
            by_event.setdefault(event_type, []).append(sub_id)
    return {k: tuple(v) for k, v in by_event.items()}


_INDEXES: weakref.WeakKeyDictionary[Engine, SubscriptionIndex] = weakref.WeakKeyDictionary()
_INDEXES_LOCK = threading.Lock()


def subscription_index(engine: Engine) -> SubscriptionIndex:
    """The one subscription cache of this process for the database of ``engine``."""
    with _INDEXES_LOCK:
        index = _INDEXES.get(engine)
        if index is None:
            index = _INDEXES[engine] = SubscriptionIndex()
        return index


def _connection(bind: Session | Connection) -> Connection:
    return bind.connection() if isinstance(bind, Session) else bind


def body_of(event_type: str, payload: Mapping[str, Any], now: datetime) -> str:
    """The request body of an event: ``{"type", "timestamp", "data"}`` as compact JSON."""
    envelope = {"type": event_type, "timestamp": now.isoformat(), "data": dict(payload)}
    return json.dumps(envelope, sort_keys=True, separators=(",", ":"), default=str)


def emit(
    bind: Session | Connection, event_type: str, payload: Mapping[str, Any], now: datetime
) -> int:
    """Put ``event_type`` with ``payload`` in the outbox in the caller's transaction, for
    each subscription that wants it; return how many messages that made (0: no INSERT).

    Raises ValueError for an event type that is not in ``EVENT_TYPES``."""
    return emit_many(bind, [Event(event_type, payload, now)])


def emit_many(bind: Session | Connection, events: list[Event]) -> int:
    """``emit`` for several events, with one INSERT for all of them."""
    conn = _connection(bind)
    index = subscription_index(conn.engine)
    rows: list[dict[str, Any]] = []
    for event in events:
        if event.event_type not in EVENT_TYPES:
            raise ValueError(f"{event.event_type!r} is not a webhook event type")
        wanting = index.wanting(conn, event.event_type)
        if not wanting:
            continue
        message_id = "msg_" + uuid.uuid4().hex
        body = body_of(event.event_type, event.payload, event.at)
        rows.extend(
            {
                "message_id": message_id,
                "subscription_id": sub_id,
                "event_type": event.event_type,
                "body": body,
                "created_at": event.at,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": event.at,
                "last_error": "",
                "delivered_at": None,
            }
            for sub_id in wanting
        )
    if rows:
        conn.execute(insert(WebhookMessage), rows)
    return len(rows)
