"""Starting and widening a staged rollout under the two-person rule, on real servers over
SQLite and PostgreSQL: held as a proposal, refused to its proposer, applied when a second
release manager approves, both names in the audit chain, and a webhook event per change."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from patchline.store.db import Database
from patchline.store.models import AuditEntry
from tests.server.conftest import RunningServer, make_token
from tests.server.test_device_flow import publish_via_repo
from tests.webhooks.conftest import FAST_RETRIES
from tests.webhooks.flows import outbox, subscribe
from tests.webhooks.test_two_person import _cli

ROLLOUT = {
    "model": "alpha",
    "build": "1.1",
    "phases": [{"percent": 1, "soak_hours": 100}, {"percent": 100, "soak_hours": 100}],
}


@pytest.fixture
def server_env() -> dict[str, str]:
    return {**FAST_RETRIES, "PATCHLINE_TWO_PERSON_ACTIONS": "rollout.start,rollout.widen"}


def _rollout_entries(server: RunningServer) -> list[AuditEntry]:
    db = Database.connect(server.database_url)
    try:
        with db.transaction() as session:
            query = select(AuditEntry).where(AuditEntry.kind == "rollout")
            return list(session.scalars(query.order_by(AuditEntry.seq)))
    finally:
        db.dispose()


def test_a_rollout_start_and_widening_need_a_second_release_manager(
    served: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_via_repo(served)
    subscribe(
        served,
        "http://127.0.0.1:9/unused",
        ["rollout.started", "rollout.phase-advanced"],
        "whsec_" + "A" * 32,
    )
    alice = served.client(
        make_token(served.home, served.database_url, "alice", "release-manager", capsys)
    )
    bob = served.client(
        make_token(served.home, served.database_url, "bob", "release-manager", capsys)
    )

    held = alice.post("/api/rollouts", json=ROLLOUT)
    assert held.status_code == 202, held.text
    proposal = held.json()
    assert (proposal["action"], proposal["proposed_by"]) == ("rollout.start", "token:alice")
    assert served.api().get("/api/rollouts").json() == []

    own = alice.post(f"/api/proposals/{proposal['id']}/approve")
    assert own.status_code == 403
    assert "a second person must approve it" in own.json()["detail"]
    assert served.api().get("/api/rollouts").json() == []

    approved = bob.post(f"/api/proposals/{proposal['id']}/approve")
    assert approved.status_code == 200, approved.text
    [rollout] = served.api().get("/api/rollouts").json()
    assert (rollout["id"], rollout["state"]) == ("R-1", "active")

    widen = alice.post("/api/rollouts/R-1/advance", json={"reason": "phase 1 is healthy"})
    assert widen.status_code == 202, widen.text
    assert alice.post(f"/api/proposals/{widen.json()['id']}/approve").status_code == 403
    assert bob.post(f"/api/proposals/{widen.json()['id']}/approve").status_code == 200
    shown = served.api().get("/api/rollouts/R-1").json()
    assert shown["phase"] == 1  # 0-based: the second phase

    started, advanced = (json.loads(e.payload) for e in _rollout_entries(served))
    expected = {"proposed_by": "token:alice", "approved_by": "token:bob"}
    assert {k: started["approval"][k] for k in expected} == expected
    assert {k: advanced["approval"][k] for k in expected} == expected
    assert [m.event_type for m in outbox(served) if m.event_type.startswith("rollout.")] == [
        "rollout.started",
        "rollout.phase-advanced",
    ]
    assert _cli(served, "audit", "verify") == 0
