"""Rollouts through the management API and the CLI on a real server, over SQLite and
PostgreSQL: who may do what, bad input refused with nothing changed, and what a device
is offered and told: in the rollout, not yet reached (falling back to the best build not
held back), never a build a rule forbids."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from patchline.cli.main import main
from patchline.clock import FixedClock, SystemClock
from patchline.director.rollout_gate import bucket
from patchline.wire.director import Action
from patchline.wire.release import UpdateClass
from tests.conftest import PASSPHRASE, open_repo, publish
from tests.server.conftest import RunningServer, make_token
from tests.server.test_device_flow import ALLOW_ALL, enroll
from tests.server.test_withdrawals import audit_entries, decision, eventually


@pytest.fixture
def released(server: RunningServer) -> RunningServer:
    """alpha 1.0, 1.1 (security) and 1.2 (functional) signed and synced; every update
    allowed."""
    repo = open_repo(server.home, FixedClock(SystemClock().now()))
    publish(repo, "alpha", "1.0")
    publish(repo, "alpha", "1.1", "2026-02-01")
    publish(repo, "alpha", "1.2", "2026-03-01", UpdateClass.FUNCTIONAL)
    api = server.api()
    assert api.post("/api/releases/sync").status_code == 200
    assert api.post("/api/policies", json=ALLOW_ALL).status_code == 201
    return server


@pytest.fixture
def cli_env(server: RunningServer) -> Iterator[Callable[..., int]]:
    saved = dict(os.environ)

    def run(*args: str) -> int:
        os.environ["PATCHLINE_DATABASE_URL"] = server.database_url
        os.environ["PATCHLINE_PASSPHRASE"] = PASSPHRASE
        return main(["--home", str(server.home), *args])

    yield run
    os.environ.clear()
    os.environ.update(saved)


def body(**changes: Any) -> dict[str, Any]:
    return {
        "model": "alpha",
        "build": "1.2",
        "phases": [{"percent": 0.01, "soak_hours": 100}, {"percent": 100, "soak_hours": 100}],
        **changes,
    }


def test_roles_and_bad_input(released: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    server = released
    viewer = server.client(make_token(server.home, server.database_url, "v", "viewer", capsys))
    manager = server.client(
        make_token(server.home, server.database_url, "m", "release-manager", capsys)
    )
    assert viewer.post("/api/rollouts", json=body()).status_code == 403
    shrinking = body(phases=[{"percent": 10}, {"percent": 5}, {"percent": 100}])
    assert manager.post("/api/rollouts", json=shrinking).status_code == 422
    assert manager.post("/api/rollouts", json=body(phases=[{"percent": 50}])).status_code == 422
    assert manager.post("/api/rollouts", json=body(phases=[])).status_code == 422
    assert manager.post("/api/rollouts", json=body(build="9.9")).status_code == 404
    assert manager.post("/api/rollouts", json=body(extra=1)).status_code == 422
    assert viewer.get("/api/rollouts").json() == []

    created = manager.post("/api/rollouts", json=body())
    assert created.status_code == 201, created.text
    assert created.json()["id"] == "R-1"
    assert manager.post("/api/rollouts", json=body()).status_code == 409
    assert manager.post("/api/rollouts/R-1/resume").status_code == 409
    assert viewer.post("/api/rollouts/R-1/pause").status_code == 403
    assert manager.post("/api/rollouts/R-9/pause").status_code == 404
    paused = manager.post("/api/rollouts/R-1/pause", json={"reason": "weekend"})
    assert paused.json()["state"] == "paused"
    assert manager.post("/api/rollouts/R-1/resume").json()["state"] == "active"
    assert manager.post("/api/rollouts/R-1/abort").json()["state"] == "aborted"
    assert manager.post("/api/rollouts/R-1/resume").status_code == 409
    shown = viewer.get("/api/rollouts/R-1").json()
    assert [e["to_state"] for e in shown["history"]] == [
        "active",
        "paused",
        "active",
        "aborted",
    ]
    assert [e["reason"] for e in shown["history"]][1] == "weekend"
    entries = audit_entries(server, "rollout")
    assert [(e["from"], e["to"]) for e in entries] == [
        (None, "active"),
        ("active", "paused"),
        ("paused", "active"),
        ("active", "aborted"),
    ]
    assert {e["actor"] for e in entries} == {"token:m"}


def test_a_device_is_told_whether_the_rollout_reached_it_and_rules_still_bound_it(
    released: RunningServer, cli_env: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    server = released
    device_id, credential = enroll(server, "SN-1")
    other_id, other_credential = enroll(server, "SN-2")
    api = server.api()
    created = api.post("/api/rollouts", json=body(selection={"device_ids": [device_id]}))
    assert created.status_code == 201, created.text
    reached = bucket("R-1", device_id) < 1

    def offered() -> tuple[str | None, tuple[str, ...]]:
        got = decision(server, device_id, credential, "1.0")
        return (got.target.path.split("/")[1] if got.target else None), got.reasons

    if not reached:
        eventually(lambda: offered()[0], "1.1")
        target, reasons = offered()
        assert target == "1.1"  # the best build not held back
        assert "not yet reached by rollout R-1 of alpha 1.2: phase 1 of 2 covers 0.01 %" in (
            reasons
        )
    explained = api.get(f"/api/devices/{device_id}/explain").json()
    assert explained["rollouts"] == [
        "in rollout R-1 of alpha 1.2, phase 1 of 2, 0.01 %"
        if reached
        else "not yet reached by rollout R-1 of alpha 1.2: phase 1 of 2 covers 0.01 %"
    ]
    # A device outside the selection is not offered it either.
    other = decision(server, other_id, other_credential, "1.0")
    assert other.target is not None
    assert other.target.path.startswith("alpha/1.1/")
    assert any(r.startswith("not selected by rollout R-1") for r in other.reasons)

    capsys.readouterr()
    assert cli_env("rollout", "advance", "R-1", "--reason", "looks fine", "--json") == 0
    advanced = json.loads(capsys.readouterr().out)
    assert advanced["where"] == "phase 2 of 2, 100 %"
    assert eventually(lambda: offered()[0], "1.2") == ("1.2")
    assert "in rollout R-1 of alpha 1.2, phase 2 of 2, 100 %" in offered()[1]

    # A rule that blocks functional updates bounds the rollout: it offers 1.1 again.
    block = {
        "id": "no-functional",
        "effect": "block",
        "priority": 20,
        "update_classes": ["functional"],
    }
    assert api.post("/api/policies", json=block).status_code == 201
    assert eventually(lambda: offered()[0], "1.1") == ("1.1")

    capsys.readouterr()
    assert cli_env("rollout", "pause", "R-1", "--reason", "hold") == 0
    capsys.readouterr()
    assert cli_env("rollout", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["state"]) for r in listed["rollouts"]] == [("R-1", "paused")]
    assert cli_env("rollout", "resume", "R-9") == 2
    assert cli_env("audit", "verify") == 0
    got = decision(server, device_id, credential, "1.0")
    assert got.action is Action.INSTALL
