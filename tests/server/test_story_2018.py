"""The 2018 story through the server's what-if endpoint, on simulated dates."""

from __future__ import annotations

from typing import Any

from patchline.wire.release import UpdateClass
from tests.conftest import open_repo, publish
from tests.server.conftest import RunningServer
from tests.server.test_device_flow import enroll

RULES = [
    {
        "id": "normal",
        "title": "Normal operations",
        "effect": "allow",
        "priority": 10,
        "valid_until": "2018-04-15",
    },
    {
        "id": "denial-2018",
        "title": "Denial order",
        "effect": "block",
        "priority": 100,
        "valid_from": "2018-04-15",
    },
    {
        "id": "L-2018-07",
        "title": "Temporary general licence",
        "effect": "allow",
        "priority": 200,
        "update_classes": ["security"],
        "deployed_before": "2018-04-15",
        "regions_excluded": ["KP"],
        "valid_from": "2018-07-02",
        "valid_until": "2018-08-01",
    },
]


def what_if(server: RunningServer, device_id: str, day: str) -> dict[str, Any]:
    response = server.api().get(f"/api/devices/{device_id}/explain", params={"at": day})
    assert response.status_code == 200, response.text
    decision: dict[str, Any] = response.json()["decision"]
    return decision


def test_the_2018_story(server: RunningServer) -> None:
    from patchline.clock import FixedClock, SystemClock

    repo = open_repo(server.home, FixedClock(SystemClock().now()))
    publish(repo, "alpha", "1.0", "2018-01-05", UpdateClass.FUNCTIONAL)
    publish(repo, "alpha", "1.1", "2018-03-05", UpdateClass.SECURITY)
    publish(repo, "alpha", "1.2", "2018-03-05", UpdateClass.CORRECTIVE)
    publish(repo, "alpha", "1.4", "2018-06-05", UpdateClass.SECURITY)
    publish(repo, "alpha", "1.5", "2018-06-05", UpdateClass.FUNCTIONAL)
    api = server.api()
    assert api.post("/api/releases/sync").status_code == 200
    for rule in RULES:
        assert api.post("/api/policies", json=rule).status_code == 201
    old, _ = enroll(server, "OLD", deployed_on="2018-01-10", security_patch_level="2018-01-05")
    new, _ = enroll(server, "NEW", deployed_on="2018-05-01", security_patch_level="2018-01-05")
    banned, _ = enroll(
        server, "KP-1", region="KP", deployed_on="2018-01-10", security_patch_level="2018-01-05"
    )

    before = what_if(server, old, "2018-03-01")
    assert before["action"] == "install"
    assert before["release"]["build"] == "1.5"
    assert any(r.startswith("rule normal (priority 10) allows") for r in before["reasons"])

    for day in ("2018-04-15", "2018-05-20", "2018-07-01"):
        during = what_if(server, old, day)
        assert during["action"] == "none", day
        assert "rule denial-2018 (priority 100) blocks all updates since 2018-04-15" in " ".join(
            during["reasons"]
        )

    licence = what_if(server, old, "2018-07-15")
    assert licence["action"] == "install"
    assert licence["release"]["build"] == "1.4"
    assert licence["release"]["update_class"] == "security"
    assert any("L-2018-07" in r and "allows security updates" in r for r in licence["reasons"])
    late_device = what_if(server, new, "2018-07-15")
    assert late_device["action"] == "none"
    assert any("deployed 2018-05-01, not before 2018-04-15" in r for r in late_device["reasons"])
    excluded = what_if(server, banned, "2018-07-15")
    assert excluded["action"] == "none"
    assert any("region KP is excluded" in r for r in excluded["reasons"])

    after = what_if(server, old, "2018-08-01")
    assert after["action"] == "none"
    assert any("L-2018-07 lapsed on 2018-08-01" in r for r in after["reasons"])

    # The licence is extended by an amendment; history is kept. It is posted long after
    # the day it takes effect, so it must say it is back-dated, and why.
    extension = {
        "effective_from": "2018-07-30",
        "changes": {"valid_until": "2018-08-15"},
        "note": "extended",
    }
    silent = api.post("/api/policies/L-2018-07/amendments", json=extension)
    assert silent.status_code == 422
    assert "is back-dated" in silent.json()["detail"]
    assert '"backdated": true' in silent.json()["hint"]
    assert api.get("/api/policies").json()[2]["amendments"] == []
    assert what_if(server, old, "2018-08-10")["action"] == "none"

    reason = "the licence was extended on 2018-07-30; entered from the paper file"
    extended = api.post(
        "/api/policies/L-2018-07/amendments",
        json={**extension, "backdated": True, "reason": reason},
    )
    assert extended.status_code == 201, extended.text
    [amendment] = extended.json()["amendments"]
    assert amendment["backdated"] is True
    assert amendment["reason"] == reason
    assert amendment["summary"].startswith("back-dated: effective 2018-07-30, recorded ")
    label = f"amendment {amendment['id']} of 2018-07-30"
    assert what_if(server, old, "2018-08-10")["action"] == "install"
    lapsed = what_if(server, old, "2018-08-15")
    assert lapsed["action"] == "none"
    assert f"rule L-2018-07 lapsed on 2018-08-15 ({label})" in lapsed["reasons"]
