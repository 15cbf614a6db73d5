"""What the server believes about a device rests on what the fleet's operator vouches
for, not on what the device says on each poll: decisions use the enrolled (or
operator-set) region, a different claim is recorded and flagged once; and a build that
failed on a device is not offered to it again until an operator retries it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from patchline.clock import FixedClock, SystemClock
from patchline.director.identity import create_director
from patchline.repository import Repository
from patchline.store.db import Database
from patchline.store.models import AuditEntry
from patchline.wire.device_api import ReportStatus
from patchline.wire.director import Action, DirectorDecision, verify_decision
from tests.conftest import open_repo, publish
from tests.server.conftest import RunningServer, make_token, start_server, stop_server
from tests.server.test_device_flow import (
    ALLOW_ALL,
    check_in,
    director_root,
    enroll,
    publish_via_repo,
    report,
)

#: A licence that never covers North Korea.
LICENCE = {"id": "licence", "effect": "allow", "priority": 10, "regions_excluded": ["KP"]}


def _decision(server: RunningServer, device_id: str, credential: str, **claims: Any) -> Any:
    response = check_in(server, credential, **claims)
    assert response.status_code == 200, response.text
    decision: DirectorDecision = verify_decision(
        director_root(server),
        response.json()["director"],
        device_id=device_id,
        now=datetime.now(UTC),
    )
    return decision


def _audit(server: RunningServer, kind: str, device_id: str) -> list[dict[str, Any]]:
    db = Database.connect(server.database_url)
    try:
        with db.transaction() as session:
            rows = session.scalars(
                select(AuditEntry)
                .where(AuditEntry.kind == kind, AuditEntry.subject == device_id)
                .order_by(AuditEntry.seq)
            )
            return [{"actor": r.actor, **json.loads(r.payload)} for r in rows]
    finally:
        db.dispose()


def _facts(server: RunningServer, device_id: str) -> dict[str, Any]:
    response = server.api().get(f"/api/devices/{device_id}/facts")
    assert response.status_code == 200, response.text
    facts: dict[str, Any] = response.json()
    return facts


# --- region ---------------------------------------------------------------------------


def test_a_claimed_region_does_not_open_what_the_vouched_region_forbids(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.api().post("/api/policies", json=LICENCE)
    publish_via_repo(server)
    device_id, credential = enroll(server, "KP-1", region="KP")

    for _ in range(3):  # every poll claims Germany
        decision = _decision(server, device_id, credential, region="DE")
        assert decision.action is Action.NONE
        assert any("region KP is excluded" in r for r in decision.reasons), decision.reasons

    facts = _facts(server, device_id)
    assert facts["region"] == "KP"
    assert facts["claimed_region"] == "DE"
    assert facts["region_claim_flagged_at"] is not None
    claims = _audit(server, "region-claim", device_id)
    assert claims == [
        {
            "actor": f"device:{device_id}",
            "claimed": "DE",
            "previous_claim": "KP",
            "region": "KP",
            "flagged": True,
        }
    ]  # once for the change of claim, not once per poll

    # Only an operator with the right role changes what the server believes.
    viewer = make_token(server.home, server.database_url, "viewer", "viewer", capsys)
    body = {"region": "DE", "reason": "the unit was moved to the Hamburg depot"}
    refused = server.client(viewer).patch(f"/api/devices/{device_id}", json=body)
    assert refused.status_code == 403
    assert _facts(server, device_id)["region"] == "KP"
    bad = server.api().patch(f"/api/devices/{device_id}", json={"region": "de", "reason": "x"})
    assert bad.status_code == 422
    changed = server.api().patch(f"/api/devices/{device_id}", json=body)
    assert changed.status_code == 200, changed.text
    assert changed.json()["region"] == "DE"
    assert changed.json()["region_claim_flagged_at"] is None  # the claim now agrees

    decision = _decision(server, device_id, credential, region="DE")
    assert decision.action is Action.INSTALL
    assert decision.release is not None
    assert decision.release.build == "1.1"
    [entry] = _audit(server, "device-facts", device_id)
    assert entry["actor"] == "token:admin"
    assert entry["changes"] == {"region": {"from": "KP", "to": "DE"}}
    assert entry["reason"] == body["reason"]
    assert server.api().get("/api/audit/verify").json()["ok"] is True


@pytest.fixture
def bound_server(
    repo: Repository, database_url: str, capsys: pytest.CaptureFixture[str]
) -> Iterator[RunningServer]:
    """A server whose enrollment token is bound to region KP."""
    create_director(repo)
    home = repo.layout.home
    process = start_server(home, database_url, env={"PATCHLINE_ENROLLMENT_REGION": "KP"})
    token = make_token(home, database_url, "admin", "admin", capsys)
    url = f"http://127.0.0.1:{process.port}"  # type: ignore[attr-defined]
    yield RunningServer(url, home, database_url, process, token)
    stop_server(process)


def test_an_enrollment_token_bound_to_a_region_decides_the_region(
    bound_server: RunningServer,
) -> None:
    server = bound_server
    server.api().post("/api/policies", json=LICENCE)
    publish_via_repo(server)
    device_id, credential = enroll(server, "KP-2", region="DE")  # says Germany

    facts = _facts(server, device_id)
    assert (facts["region"], facts["claimed_region"]) == ("KP", "DE")
    assert facts["region_claim_flagged_at"] is not None
    assert _decision(server, device_id, credential, region="DE").action is Action.NONE
    [enrolled] = _audit(server, "enroll", device_id)
    assert (enrolled["region"], enrolled["claimed_region"]) == ("KP", "DE")


# --- failed builds -----------------------------------------------------------------


def test_a_rolled_back_build_is_not_offered_again_until_an_operator_retries_it(
    server: RunningServer,
) -> None:
    server.api().post("/api/policies", json=ALLOW_ALL)
    publish_via_repo(server)
    device_id, credential = enroll(server, "RB-1")
    assert _decision(server, device_id, credential).action is Action.INSTALL
    report(server, credential, ReportStatus.ROLLED_BACK)

    today = datetime.now(UTC).date().isoformat()
    sentence = f"build 1.1 failed to boot on this device on {today}; not offered again"
    for _ in range(3):
        decision = _decision(server, device_id, credential)
        assert decision.action is Action.NONE
        assert sentence in decision.reasons, decision.reasons
    assert [f["build"] for f in _facts(server, device_id)["failed_builds"]] == ["1.1"]

    unknown = server.api().post(
        f"/api/devices/{device_id}/retry", json={"build": "1.0", "reason": "never failed"}
    )
    assert unknown.status_code == 404
    retried = server.api().post(
        f"/api/devices/{device_id}/retry",
        json={"build": "1.1", "reason": "the boot loader was fixed in the field"},
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["failed_builds"] == []

    decision = _decision(server, device_id, credential)
    assert decision.action is Action.INSTALL
    assert decision.release is not None
    assert decision.release.build == "1.1"
    [entry] = _audit(server, "retry", device_id)
    assert entry["build"] == "1.1"
    assert entry["actor"] == "token:admin"
    assert entry["failure"]["status"] == "rolled-back"
    assert server.api().get("/api/audit/verify").json()["ok"] is True


def test_a_build_that_failed_falls_back_to_the_next_best_allowed_build(
    server: RunningServer,
) -> None:
    server.api().post("/api/policies", json=ALLOW_ALL)
    publish_via_repo(server)
    repo = open_repo(server.home, FixedClock(SystemClock().now()))
    publish(repo, "alpha", "1.2", "2026-03-01")
    assert server.api().post("/api/releases/sync").status_code == 200
    device_id, credential = enroll(server, "RB-2")
    decision = _decision(server, device_id, credential)
    assert decision.release is not None
    assert decision.release.build == "1.2"
    report(server, credential, ReportStatus.ROLLED_BACK, build="1.2")

    decision = _decision(server, device_id, credential)
    assert decision.action is Action.INSTALL
    assert decision.release is not None
    assert decision.release.build == "1.1"
    assert any(r.startswith("build 1.2 failed to boot") for r in decision.reasons)


def test_every_process_learns_of_a_failed_build_and_a_changed_region(
    server: RunningServer,
) -> None:
    server.api().post("/api/policies", json=LICENCE)
    publish_via_repo(server)
    second = start_server(server.home, server.database_url)
    try:
        other = RunningServer(
            f"http://127.0.0.1:{second.port}",  # type: ignore[attr-defined]
            server.home,
            server.database_url,
            second,
            server.admin_token,
        )
        device_id, credential = enroll(server, "TP-1", region="KP")
        assert _decision(other, device_id, credential).action is Action.NONE  # cached there
        body = {"region": "DE", "reason": "registered in the wrong region"}
        assert server.api().patch(f"/api/devices/{device_id}", json=body).status_code == 200
        time.sleep(2.5)  # each process looks for changed devices once a second
        assert _decision(other, device_id, credential).action is Action.INSTALL

        report(server, credential, ReportStatus.ROLLED_BACK)
        time.sleep(2.5)
        decision = _decision(other, device_id, credential)
        assert decision.action is Action.NONE
        assert any(r.startswith("build 1.1 failed to boot") for r in decision.reasons)
    finally:
        stop_server(second)
