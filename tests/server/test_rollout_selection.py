"""Rollouts that select by carrier and by named device group, and rollouts with a
stepping stone, on a real server over SQLite and PostgreSQL: groups managed through the
API (roles, bad input refused with nothing changed, every change audited), a device
added to a group brought into the rollout at its next check-in, a failed build retried
for a whole group, and a device on an old build offered the stepping stone first."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from patchline.director.rollout_gate import bucket
from patchline.wire.device_api import ReportStatus
from tests.server.conftest import RunningServer, make_token
from tests.server.test_device_beliefs import _audit
from tests.server.test_device_flow import enroll, report
from tests.server.test_rollouts_api import body, cli_env, released
from tests.server.test_withdrawals import audit_entries, decision, eventually

__all__ = ["cli_env", "released"]  # fixtures, used by name

EVERYONE = [{"percent": 100, "soak_hours": 100}]


def offered(server: RunningServer, device: tuple[str, str], build: str = "1.0") -> Any:
    """(the build offered, the reasons) at a check-in on ``build``."""
    got = decision(server, device[0], device[1], build)
    return (got.target.path.split("/")[1] if got.target else None), got.reasons


def test_a_rollout_selects_by_carrier_and_by_group_and_follows_the_group(
    released: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server = released
    api = server.api()
    viewer = server.client(make_token(server.home, server.database_url, "v", "viewer", capsys))
    o2_beta = enroll(server, "SN-1", carrier="o2")
    telekom_beta = enroll(server, "SN-2", carrier="telekom")
    o2_later = enroll(server, "SN-3", carrier="o2")

    assert viewer.post("/api/groups", json={"name": "beta"}).status_code == 403
    assert api.post("/api/groups", json={"name": "no spaces"}).status_code == 422
    created = api.post("/api/groups", json={"name": "beta", "description": "field testers"})
    assert created.status_code == 201, created.text
    assert api.post("/api/groups", json={"name": "beta"}).status_code == 409
    unknown = api.post("/api/groups/beta/members", json={"add": [o2_beta[0], "no-such-device"]})
    assert unknown.status_code == 404
    assert "no-such-device" in unknown.text
    assert api.get("/api/groups/beta").json()["members"] == 0  # nothing changed
    changed = api.post(
        "/api/groups/beta/members",
        json={"add": [o2_beta[0], telekom_beta[0]], "reason": "signed up"},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["added"], changed.json()["group"]["members"]) == (2, 2)
    again = api.post("/api/groups/beta/members", json={"add": [o2_beta[0]]}).json()
    assert again["added"] == 0

    missing_group = body(phases=EVERYONE, selection={"groups": ["gamma"]})
    assert api.post("/api/rollouts", json=missing_group).status_code == 404
    selection = {"groups": ["beta"], "carriers": ["o2"]}
    created = api.post("/api/rollouts", json=body(phases=EVERYONE, selection=selection))
    assert created.status_code == 201, created.text
    assert created.json()["selection"] == selection

    assert eventually(lambda: offered(server, o2_beta)[0], "1.2") == "1.2"
    assert "in rollout R-1 of alpha 1.2, phase 1 of 1, 100 %" in offered(server, o2_beta)[1]
    target, reasons = offered(server, telekom_beta)
    assert target == "1.1"
    assert "not selected by rollout R-1 of alpha 1.2: carrier telekom is not one of o2" in reasons
    target, reasons = offered(server, o2_later)
    assert target == "1.1"
    assert (
        "not selected by rollout R-1 of alpha 1.2: the device is in none of the groups beta"
        in reasons
    )
    cohort = api.get("/api/rollouts/R-1/cohort").json()["device_ids"]
    assert cohort == [o2_beta[0]]

    # A device added to the group is in the rollout from its next check-in.
    assert api.post("/api/groups/beta/members", json={"add": [o2_later[0]]}).json()["added"] == 1
    assert eventually(lambda: offered(server, o2_later)[0], "1.2") == "1.2"
    assert sorted(api.get("/api/rollouts/R-1/cohort").json()["device_ids"]) == sorted(
        [o2_beta[0], o2_later[0]]
    )
    # An operator's change of carrier is honoured too (vouched facts, audited).
    moved = api.patch(
        f"/api/devices/{telekom_beta[0]}", json={"carrier": "o2", "reason": "ported number"}
    )
    assert moved.status_code == 200, moved.text
    assert eventually(lambda: offered(server, telekom_beta)[0], "1.2") == "1.2"

    listed = viewer.get("/api/groups").json()
    assert [(g["name"], g["members"], g["rollouts"]) for g in listed] == [("beta", 3, ["R-1"])]
    members = viewer.get("/api/groups/beta/members").json()["device_ids"]
    assert members == sorted([o2_beta[0], telekom_beta[0], o2_later[0]])
    assert api.request("DELETE", "/api/groups/beta").status_code == 409
    assert api.post("/api/rollouts/R-1/abort").status_code == 200
    deleted = api.request("DELETE", "/api/groups/beta", json={"reason": "test over"})
    assert deleted.status_code == 200, deleted.text
    assert api.get("/api/groups/beta").status_code == 404

    kinds = [e["subject"] for e in audit_entries(server, "group-members")]
    assert kinds == ["beta", "beta"]  # the refused and the no-op changes wrote nothing
    assert [e["subject"] for e in audit_entries(server, "group-delete")] == ["beta"]
    assert api.get("/api/audit/verify").json()["ok"] is True


def test_a_failed_build_is_retried_for_every_member_of_a_group(
    released: RunningServer,
) -> None:
    server = released
    api = server.api()
    devices = [enroll(server, f"RG-{i}") for i in range(3)]
    for device in devices:
        assert offered(server, device)[0] == "1.2"
    for device in devices[:2]:
        report(server, device[1], ReportStatus.ROLLED_BACK, build="1.2")
        assert offered(server, device)[0] == "1.1"
    api.post("/api/groups", json={"name": "lab"})
    ids = [d[0] for d in devices]
    api.post("/api/groups/lab/members", json={"add": ids})
    retried = api.post("/api/groups/lab/retry", json={"build": "1.2", "reason": "fixed"})
    assert retried.status_code == 200, retried.text
    assert retried.json()["device_ids"] == sorted(ids[:2])
    for device in devices[:2]:
        assert offered(server, device)[0] == "1.2"
        [entry] = _audit(server, "retry", device[0])
        assert entry["reason"] == "fixed"


def test_a_device_on_an_old_build_passes_through_the_stepping_stone(
    released: RunningServer,
) -> None:
    server = released
    api = server.api()
    old = enroll(server, "ST-1")
    too_new = body(phases=EVERYONE, stepping_stone="1.3")
    assert api.post("/api/rollouts", json=too_new).status_code == 422
    unknown = body(phases=EVERYONE, stepping_stone="0.9")
    assert api.post("/api/rollouts", json=unknown).status_code == 404
    assert api.get("/api/rollouts").json() == []
    created = api.post("/api/rollouts", json=body(phases=EVERYONE, stepping_stone="1.1"))
    assert created.status_code == 201, created.text
    assert created.json()["stepping_stone"] == "1.1"
    assert bucket("R-1", old[0]) < 10_000

    target, reasons = offered(server, old, "1.0")
    assert target == "1.1"
    assert (
        "rollout R-1 of alpha 1.2 requires build 1.1 first: this device runs 1.0, "
        "so it is offered 1.1 or older before 1.2" in reasons
    )
    assert offered(server, old, "1.1")[0] == "1.2"
    explained = api.get(f"/api/devices/{old[0]}/explain").json()["rollouts"]
    assert explained[0] == "in rollout R-1 of alpha 1.2, phase 1 of 1, 100 %"
    # Completed, the rollout holds nobody back, but the stone still holds.
    assert api.post("/api/rollouts/R-1/advance").json()["state"] == "completed"
    assert eventually(lambda: offered(server, old, "1.0")[0], "1.1") == "1.1"
    assert offered(server, old, "1.1")[0] == "1.2"
    [start] = [e for e in audit_entries(server, "rollout") if e["from"] is None]
    assert start["stepping_stone"] == "1.1"


def test_groups_and_the_new_selection_from_the_command_line(
    released: RunningServer, cli_env: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    server = released
    first = enroll(server, "CL-1", carrier="o2")
    second = enroll(server, "CL-2")
    ids = tmp_ids(server, [second[0]])
    assert cli_env("group", "create", "beta", "--description", "testers") == 0
    assert cli_env("group", "create", "beta") == 2  # taken
    assert cli_env("group", "add", "beta", first[0], "--from-file", str(ids)) == 0
    assert cli_env("group", "add", "beta", "no-such-device") == 2
    capsys.readouterr()
    assert cli_env("group", "show", "beta", "--members", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["members"], shown["device_ids"]) == (2, sorted([first[0], second[0]]))
    args = ["--phases", "100", "--group", "beta", "--carrier", "o2"]
    assert cli_env("rollout", "create", "alpha", "1.2", *args, "--stepping-stone", "1.1") == 0
    capsys.readouterr()
    assert cli_env("rollout", "show", "R-1", "--json") == 0
    rollout = json.loads(capsys.readouterr().out)
    assert rollout["selection"] == {"carriers": ["o2"], "groups": ["beta"]}
    assert rollout["stepping_stone"] == "1.1"
    assert cli_env("group", "delete", "beta") == 2  # an open rollout selects it
    assert cli_env("group", "remove", "beta", second[0], "--reason", "left") == 0
    capsys.readouterr()
    assert cli_env("group", "list", "--json") == 0
    [listed] = json.loads(capsys.readouterr().out)["groups"]
    assert (listed["name"], listed["members"], listed["rollouts"]) == ("beta", 1, ["R-1"])
    assert cli_env("audit", "verify") == 0


def tmp_ids(server: RunningServer, ids: list[str]) -> Path:
    """A file of device ids, one per line."""
    path = server.home / "ids.txt"
    path.write_text("\n".join(ids) + "\n")
    return path


def test_the_explanation_gives_the_answer_the_device_gets(released: RunningServer) -> None:
    """The explanation leaves out what rollouts hold back and what failed on the device,
    as the check-in does, and says so."""
    server = released
    api = server.api()
    device = enroll(server, "EX-1")
    assert offered(server, device)[0] == "1.2"
    report(server, device[1], ReportStatus.ROLLED_BACK, build="1.2")
    explained = api.get(f"/api/devices/{device[0]}/explain").json()
    assert explained["decision"]["target_path"].startswith("alpha/1.1/")
    assert offered(server, device)[0] == "1.1"
    assert [s.split(" failed ")[0] for s in explained["failed_builds"]] == ["build 1.2"]

    other = enroll(server, "EX-2")
    created = api.post(
        "/api/rollouts", json=body(selection={"device_ids": [device[0]]}, stepping_stone="1.1")
    )
    assert created.status_code == 201, created.text
    explained = api.get(f"/api/devices/{other[0]}/explain").json()
    assert explained["decision"]["target_path"].startswith("alpha/1.1/")
    assert explained["held_back_by_rollouts"] == ["alpha/1.2/alpha-1.2.img"]
    assert explained["rollouts"][0].startswith("not selected by rollout R-1 of alpha 1.2")
    assert offered(server, other)[0] == "1.1"
