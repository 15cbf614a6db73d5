"""The deliverer: one background thread per server process that sends due outbox
messages, signed, and records each outcome.

A message is claimed by moving its due time past the request's timeout (the claim)
in a short transaction: with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several
processes share the work, and under SQLite's write lock (every write transaction
begins IMMEDIATE). A process killed mid-delivery leaves its claims to lapse and
another attempt sends them again: delivery is at least once, and receivers
de-duplicate by ``webhook-id``. A failed attempt is retried after an exponential
backoff with jitter, up to a maximum number of attempts; then the message is
``failed`` until someone re-sends it.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select, update

from patchline.clock import Clock
from patchline.store.db import Database
from patchline.store.models import WebhookMessage, WebhookSubscription
from patchline.webhooks.signing import headers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard the deliverer tries."""

    max_attempts: int = 12
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 3600.0
    timeout_seconds: float = 10.0
    poll_seconds: float = 0.5
    batch: int = 50

    def backoff(self, attempts: int, rng: random.Random) -> timedelta:
        """The wait before the next attempt after ``attempts`` failed ones: doubling from
        the base up to the maximum, with the upper half jittered."""
        ceiling = min(self.retry_base_seconds * 2 ** max(attempts - 1, 0), self.retry_max_seconds)
        return timedelta(seconds=ceiling * rng.uniform(0.5, 1.0))

    @property
    def claim(self) -> timedelta:
        """How long a claimed message is held before another attempt may take it."""
        return timedelta(seconds=self.timeout_seconds + 5)


@dataclass(frozen=True)
class Claimed:
    """A message taken for one attempt, with where and how to send it."""

    id: int
    message_id: str
    body: str
    attempts: int
    url: str | None
    secret: str | None


def claim_due(db: Database, now: datetime, policy: DeliveryPolicy) -> list[Claimed]:
    """Take up to ``policy.batch`` due messages for one attempt each. An idle outbox
    costs one indexed read that takes no lock; the claiming transaction opens only
    when a message is due."""
    with db.reading() as conn:
        anything = conn.execute(
            select(WebhookMessage.id)
            .where(WebhookMessage.state == "pending", WebhookMessage.next_attempt_at <= now)
            .limit(1)
        ).first()
    if anything is None:
        return []
    with db.transaction() as session:
        query = (
            select(WebhookMessage)
            .where(WebhookMessage.state == "pending", WebhookMessage.next_attempt_at <= now)
            .order_by(WebhookMessage.next_attempt_at, WebhookMessage.id)
            .limit(policy.batch)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        messages = list(session.scalars(query))
        if not messages:
            return []
        sub_ids = {m.subscription_id for m in messages}
        subs = {
            s.id: s
            for s in session.scalars(
                select(WebhookSubscription).where(WebhookSubscription.id.in_(sub_ids))
            )
        }
        claimed = []
        for message in messages:
            message.next_attempt_at = now + policy.claim
            sub = subs.get(message.subscription_id)
            live = sub is not None and sub.removed_at is None
            claimed.append(
                Claimed(
                    message.id,
                    message.message_id,
                    message.body,
                    message.attempts,
                    sub.url if live and sub else None,
                    sub.secret if live and sub else None,
                )
            )
        return claimed


def record_outcome(
    db: Database,
    message: Claimed,
    error: str | None,
    now: datetime,
    policy: DeliveryPolicy,
    rng: random.Random,
) -> None:
    """Store how one attempt went: delivered, to be retried, or failed for good."""
    attempts = message.attempts + 1
    if error is None:
        values: dict[str, object] = {
            "state": "delivered",
            "attempts": attempts,
            "delivered_at": now,
            "last_error": "",
        }
    elif attempts >= policy.max_attempts or message.url is None:
        values = {"state": "failed", "attempts": attempts, "last_error": error}
    else:
        values = {
            "attempts": attempts,
            "last_error": error,
            "next_attempt_at": now + policy.backoff(attempts, rng),
        }
    with db.transaction() as session:
        session.execute(
            update(WebhookMessage)
            .where(WebhookMessage.id == message.id, WebhookMessage.state == "pending")
            .values(values)
        )


def send(client: httpx.Client, message: Claimed, now: datetime) -> str | None:
    """POST one message, signed; None when the receiver answered 2xx, else what went
    wrong (never the secret)."""
    if message.url is None or message.secret is None:
        return "the subscription was removed"
    timestamp = int(now.timestamp())
    try:
        response = client.post(
            message.url,
            content=message.body.encode(),
            headers=headers(message.secret, message.message_id, timestamp, message.body),
        )
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"


class Deliverer:
    """The background thread that delivers the outbox of one server process."""

    def __init__(self, db: Database, clock: Clock, policy: DeliveryPolicy) -> None:
        self._db = db
        self._clock = clock
        self._policy = policy
        self._stop = threading.Event()
        self._rng = random.Random()
        self._thread = threading.Thread(target=self._run, name="patchline-webhooks", daemon=True)

    def start(self) -> None:
        """Start delivering."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the attempt in flight (unsent claims lapse and are sent later)."""
        self._stop.set()
        self._thread.join(timeout=self._policy.timeout_seconds + 5)

    def run_once(self, client: httpx.Client) -> int:
        """Attempt every message due now, once; return how many were attempted."""
        claimed = claim_due(self._db, self._clock.now(), self._policy)
        for message in claimed:
            if self._stop.is_set():
                break
            error = send(client, message, self._clock.now())
            record_outcome(self._db, message, error, self._clock.now(), self._policy, self._rng)
        return len(claimed)

    def _run(self) -> None:
        with httpx.Client(timeout=self._policy.timeout_seconds, follow_redirects=False) as client:
            while not self._stop.is_set():
                try:
                    busy = self.run_once(client)
                except Exception as exc:  # the database is down: try again later
                    log.warning("webhook delivery paused: %s", exc)
                    busy = 0
                if not busy:
                    self._stop.wait(self._policy.poll_seconds)
