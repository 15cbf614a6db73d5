"""The two-person rule on real servers over SQLite and PostgreSQL: a rule change held as a
proposal is applied only when a second token approves it, with both names in the audit
chain; its proposer cannot approve it, a viewer cannot either, a rejected one is never
applied."""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import select

from patchline.cli.main import main
from patchline.store.db import Database
from patchline.store.models import AuditEntry
from tests.server.conftest import RunningServer, make_token
from tests.webhooks.flows import rule


def _audit(server: RunningServer) -> list[AuditEntry]:
    db = Database.connect(server.database_url)
    try:
        with db.transaction() as session:
            return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    finally:
        db.dispose()


def _cli(server: RunningServer, *args: str) -> int:
    os.environ["PATCHLINE_DATABASE_URL"] = server.database_url
    try:
        return main(["--home", str(server.home), *args])
    finally:
        del os.environ["PATCHLINE_DATABASE_URL"]


def test_a_rule_proposed_by_one_token_is_applied_only_when_a_second_approves_it(
    served: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    alice = make_token(served.home, served.database_url, "alice", "compliance", capsys)
    bob = make_token(served.home, served.database_url, "bob", "compliance", capsys)
    viewer = make_token(served.home, served.database_url, "val", "viewer", capsys)
    held = served.client(alice).post("/api/policies", json=rule("normal"))
    assert held.status_code == 202, held.text
    proposal = held.json()
    assert proposal["state"] == "pending"
    assert proposal["action"] == "rule.create"
    assert proposal["proposed_by"] == "token:alice"
    assert served.api().get("/api/policies").json() == []

    own = served.client(alice).post(f"/api/proposals/{proposal['id']}/approve")
    assert own.status_code == 403
    assert own.json()["detail"] == (
        f"proposal {proposal['id']} was proposed by token:alice: a second person must approve it"
    )
    looker = served.client(viewer).post(f"/api/proposals/{proposal['id']}/approve")
    assert looker.status_code == 403
    assert served.api().get("/api/policies").json() == []

    approved = served.client(bob).post(f"/api/proposals/{proposal['id']}/approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved"
    assert approved.json()["decided_by"] == "token:bob"
    [stored] = served.api().get("/api/policies").json()
    assert stored["rule"]["id"] == "normal"
    again = served.client(bob).post(f"/api/proposals/{proposal['id']}/approve")
    assert again.status_code == 409

    entries = _audit(served)
    [created] = [e for e in entries if e.kind == "policy"]
    assert created.actor == "token:bob"
    assert json.loads(created.payload)["approval"] == {
        "proposal": proposal["id"],
        "proposed_by": "token:alice",
        "approved_by": "token:bob",
    }
    steps = [json.loads(e.payload) for e in entries if e.kind == "proposal"]
    assert [
        (s["state"], e.actor)
        for s, e in zip(steps, [e for e in entries if e.kind == "proposal"], strict=True)
    ] == [
        ("pending", "token:alice"),
        ("approved", "token:bob"),
    ]
    assert steps[1]["proposed_by"] == "token:alice"
    assert steps[1]["approved_by"] == "token:bob"
    assert _cli(served, "audit", "verify") == 0


def test_a_rejected_amendment_is_never_applied_and_the_cli_approves_another(
    served: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    alice = make_token(served.home, served.database_url, "alice", "compliance", capsys)
    bob = make_token(served.home, served.database_url, "bob", "compliance", capsys)
    created = served.client(alice).post("/api/policies", json=rule("normal")).json()
    assert served.client(bob).post(f"/api/proposals/{created['id']}/approve").status_code == 200
    amendment = {"effective_from": "2099-01-01", "changes": {"priority": 20}}
    first = served.client(alice).post("/api/policies/normal/amendments", json=amendment)
    assert first.status_code == 202, first.text
    rejected = served.client(bob).post(
        f"/api/proposals/{first.json()['id']}/reject", json={"reason": "not yet"}
    )
    assert rejected.status_code == 200
    assert rejected.json()["state"] == "rejected"
    assert (
        served.client(alice).post(f"/api/proposals/{first.json()['id']}/approve").status_code == 409
    )
    [stored] = served.api().get("/api/policies").json()
    assert stored["amendments"] == []

    second = served.client(alice).post("/api/policies/normal/amendments", json=amendment)
    assert second.status_code == 202
    capsys.readouterr()
    assert _cli(served, "proposal", "list", "--state", "pending", "--json") == 0
    [pending] = json.loads(capsys.readouterr().out)["proposals"]
    assert pending["id"] == second.json()["id"]
    assert _cli(served, "proposal", "approve", str(pending["id"])) == 0
    [stored] = served.api().get("/api/policies").json()
    assert [a["changes"] for a in stored["amendments"]] == [{"priority": 20}]
    assert _cli(served, "audit", "verify") == 0


def test_a_change_the_direct_path_would_refuse_is_not_proposed(
    served: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    alice = make_token(served.home, served.database_url, "alice", "compliance", capsys)
    unknown = served.client(alice).post(
        "/api/policies/nothing/amendments",
        json={"effective_from": "2099-01-01", "changes": {"priority": 20}},
    )
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "no rule nothing"}
    assert served.api().get("/api/proposals").json() == []
