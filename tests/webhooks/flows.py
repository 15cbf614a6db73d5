"""Making events happen on a running server, and reading its outbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from patchline.store.db import Database
from patchline.store.models import WebhookMessage
from patchline.wire.device_api import ReportStatus
from tests.server.conftest import RunningServer
from tests.server.test_device_flow import enroll, report


def subscribe(server: RunningServer, url: str, events: list[str], secret: str) -> int:
    answer = server.api().post(
        "/api/webhooks", json={"url": url, "events": events, "secret": secret}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["secret"] == secret
    return int(answer.json()["id"])


def rule(rule_id: str) -> dict[str, Any]:
    return {"id": rule_id, "title": f"Rule {rule_id}", "effect": "allow", "priority": 10}


def create_rule_with_approval(server: RunningServer, approver_token: str, rule_id: str) -> None:
    """Propose a rule as the admin and approve it with ``approver_token``: three events
    (proposal.created, rule.created, proposal.approved)."""
    held = server.api().post("/api/policies", json=rule(rule_id))
    assert held.status_code == 202, held.text
    approved = server.client(approver_token).post(f"/api/proposals/{held.json()['id']}/approve")
    assert approved.status_code == 200, approved.text


def install_results(server: RunningServer, serial: str) -> None:
    """A device reports a failed install, a roll-back, then a healthy boot: three events."""
    _device_id, credential = enroll(server, serial)
    for status in (ReportStatus.FAILED, ReportStatus.ROLLED_BACK, ReportStatus.BOOTED_HEALTHY):
        report(server, credential, status)


def outbox(server: RunningServer) -> list[WebhookMessage]:
    db = Database.connect(server.database_url)
    try:
        with db.transaction() as session:
            return list(session.scalars(select(WebhookMessage).order_by(WebhookMessage.id)))
    finally:
        db.dispose()
