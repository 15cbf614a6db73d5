"""Writing rules through the management API on real servers over SQLite and PostgreSQL:
each change lands with its audit entry in one transaction, a refused one with neither."""

from __future__ import annotations

from sqlalchemy import func, select

from patchline.store.db import Database
from patchline.store.models import AuditEntry, Policy, PolicyAmendment
from tests.server.conftest import RunningServer
from tests.server.test_device_flow import ALLOW_ALL


def _counts(server: RunningServer) -> tuple[int, int, int]:
    db = Database.connect(server.database_url)
    try:
        with db.transaction() as session:
            return (
                session.scalar(select(func.count()).select_from(Policy)) or 0,
                session.scalar(select(func.count()).select_from(PolicyAmendment)) or 0,
                session.scalar(select(func.count()).select_from(AuditEntry)) or 0,
            )
    finally:
        db.dispose()


def test_a_rule_and_its_amendment_each_add_one_audit_entry(server: RunningServer) -> None:
    api = server.api()
    rules, amendments, entries = _counts(server)
    created = api.post("/api/policies", json=ALLOW_ALL)
    assert created.status_code == 201, created.text
    assert created.json()["rule"]["id"] == "normal"
    assert _counts(server) == (rules + 1, amendments, entries + 1)
    amended = api.post(
        "/api/policies/normal/amendments",
        json={"effective_from": "2099-01-01", "changes": {"priority": 20}},
    )
    assert amended.status_code == 201, amended.text
    [shown] = amended.json()["amendments"]
    assert shown["changes"] == {"priority": 20}
    assert shown["summary"].startswith("effective 2099-01-01, recorded ")
    assert _counts(server) == (rules + 1, amendments + 1, entries + 2)
    assert api.get("/api/audit/verify").json()["ok"] is True


def test_a_rule_id_taken_or_unknown_changes_nothing(server: RunningServer) -> None:
    api = server.api()
    assert api.post("/api/policies", json=ALLOW_ALL).status_code == 201
    before = _counts(server)
    again = api.post("/api/policies", json={**ALLOW_ALL, "title": "Other"})
    assert again.status_code == 409
    assert again.json() == {"detail": "rule normal exists; amend it instead"}
    unknown = api.post(
        "/api/policies/nothing/amendments",
        json={"effective_from": "2099-01-01", "changes": {"priority": 20}},
    )
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "no rule nothing"}
    assert _counts(server) == before
