"""Operators withdraw things: revoke a token, decommission a device, yank a release; on
real servers over SQLite and PostgreSQL, every change in an unbroken audit chain."""

from __future__ import annotations

import getpass
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from patchline.cli.main import main
from patchline.clock import FixedClock, SystemClock
from patchline.repository import releases_of
from patchline.store.db import Database
from patchline.store.models import AuditEntry
from patchline.wire.director import Action, DirectorDecision, verify_decision
from tests.conftest import PASSPHRASE, open_repo, publish
from tests.server.conftest import (
    ENROLLMENT_TOKEN,
    RunningServer,
    make_token,
    start_server,
    stop_server,
)
from tests.server.test_device_flow import ALLOW_ALL, check_in, director_root, enroll


@pytest.fixture
def cli_env(server: RunningServer) -> Iterator[Callable[..., int]]:
    """Run ``patchline --home HOME ...`` against the server's database and keys."""
    saved = dict(os.environ)

    def run(*args: str) -> int:
        os.environ["PATCHLINE_DATABASE_URL"] = server.database_url
        os.environ["PATCHLINE_PASSPHRASE"] = PASSPHRASE
        return main(["--home", str(server.home), *args])

    yield run
    os.environ.clear()
    os.environ.update(saved)


def audit_entries(server: RunningServer, kind: str) -> list[dict[str, Any]]:
    db = Database.connect(server.database_url)
    with db.transaction() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.kind == kind))
        found = [{"actor": r.actor, "subject": r.subject, **json.loads(r.payload)} for r in rows]
    db.dispose()
    return found


def decision(
    server: RunningServer, device_id: str, credential: str, build: str
) -> DirectorDecision:
    response = check_in(server, credential, build=build)
    assert response.status_code == 200, response.text
    return verify_decision(
        director_root(server),
        response.json()["director"],
        device_id=device_id,
        now=datetime.now(UTC),
    )


def eventually(probe: Callable[[], Any], want: Any, seconds: float = 10) -> Any:
    """``probe()`` once it equals ``want`` (catalogs reload once a second)."""
    deadline = time.monotonic() + seconds
    while (got := probe()) != want and time.monotonic() < deadline:
        time.sleep(0.2)
    return got


def test_a_revoked_token_gets_401_at_once_on_every_process(
    server: RunningServer, cli_env: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    viewer = make_token(server.home, server.database_url, "dashboard", "viewer", capsys)
    other = make_token(server.home, server.database_url, "ci", "release-manager", capsys)
    second = start_server(server.home, server.database_url)
    try:
        second_url = f"http://127.0.0.1:{second.port}"  # type: ignore[attr-defined]
        on_second = RunningServer(second_url, server.home, server.database_url, second, viewer)
        assert on_second.client(viewer).get("/api/releases").status_code == 200
        assert server.client(viewer).get("/api/tokens").status_code == 403
        listed = server.api().get("/api/tokens")
        assert [t["name"] for t in listed.json()] == ["admin", "dashboard", "ci"]
        assert viewer not in listed.text
        revoked = server.api().post("/api/tokens/dashboard/revoke", json={"reason": "laptop lost"})
        assert revoked.status_code == 200, revoked.text
        assert server.client(viewer).get("/api/releases").status_code == 401
        assert on_second.client(viewer).get("/api/releases").status_code == 401
        again = server.api().post("/api/tokens/dashboard/revoke", json={})
        assert again.status_code == 409
        assert server.api().post("/api/tokens/nobody/revoke", json={}).status_code == 404
        # The command line: list (no secret) and revoke, in the audit chain too.
        capsys.readouterr()
        assert cli_env("token", "revoke", "ci", "--reason", "rotated") == 0
        assert on_second.client(other).get("/api/releases").status_code == 401
        assert cli_env("token", "list") == 0
        table = capsys.readouterr().out
        assert "dashboard" in table
        assert "release-manager" in table
        assert other not in table
        assert viewer not in table
    finally:
        stop_server(second)
    entries = audit_entries(server, "token-revoke")
    assert [(e["subject"], e["actor"], e["reason"]) for e in entries] == [
        ("dashboard", "token:admin", "laptop lost"),
        ("ci", f"cli:{getpass.getuser()}", "rotated"),
    ]
    assert cli_env("audit", "verify") == 0


def test_a_decommissioned_device_gets_401_and_is_offered_nothing(
    server: RunningServer, cli_env: Callable[..., int]
) -> None:
    api = server.api()
    assert api.post("/api/policies", json=ALLOW_ALL).status_code == 201
    repo = open_repo(server.home, FixedClock(SystemClock().now()))
    publish(repo, "alpha", "1.0")
    publish(repo, "alpha", "1.1", "2026-02-01")
    assert api.post("/api/releases/sync").status_code == 200
    device_id, credential = enroll(server, "SN-1")
    other_id, other_credential = enroll(server, "SN-2")
    assert decision(server, device_id, credential, "1.0").action is Action.INSTALL

    refused = api.post(f"/api/devices/{device_id}/decommission", json={})
    assert refused.status_code == 422  # a reason is required
    done = api.post(f"/api/devices/{device_id}/decommission", json={"reason": "stolen"})
    assert done.status_code == 200, done.text
    assert done.json()["decommission_reason"] == "stolen"
    response = check_in(server, credential)
    assert response.status_code == 401
    assert "decommissioned" in response.json()["error"]
    reports = server.client(credential).post("/v1/reports", json={"reports": []})
    assert reports.status_code == 401
    again = server.client(ENROLLMENT_TOKEN).post(
        "/v1/enroll",
        json={
            "model": "alpha",
            "serial": "SN-1",
            "hardware_id": "hw-SN-1",
            "region": "DE",
            "deployed_on": "2026-01-10",
            "build": "1.0",
            "security_patch_level": "2026-01-01",
        },
    )
    assert again.status_code == 409
    assert check_in(server, credential).status_code == 401  # re-enrolling issued nothing
    assert (
        api.post(f"/api/devices/{device_id}/decommission", json={"reason": "x"}).status_code == 409
    )
    # The other device is untouched; the records stay and the listing can filter.
    assert decision(server, other_id, other_credential, "1.0").action is Action.INSTALL
    assert api.get(f"/api/devices/{device_id}").status_code == 200
    taken = api.get("/api/devices", params={"decommissioned": "true"}).json()["devices"]
    assert [d["id"] for d in taken] == [device_id]
    serving = api.get("/api/devices", params={"decommissioned": "false"}).json()["devices"]
    assert [d["id"] for d in serving] == [other_id]
    # The command line does the same for the other device.
    assert cli_env("device", "decommission", other_id, "--reason", "end of lease") == 0
    assert eventually(lambda: check_in(server, other_credential).status_code, 401) == 401
    entries = audit_entries(server, "decommission")
    assert [(e["subject"], e["reason"]) for e in entries] == [
        (device_id, "stolen"),
        (other_id, "end of lease"),
    ]
    assert entries[0]["actor"] == "token:admin"
    assert cli_env("audit", "verify") == 0


def test_a_yanked_release_is_not_offered_and_the_next_best_is(
    server: RunningServer, cli_env: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    api = server.api()
    assert api.post("/api/policies", json=ALLOW_ALL).status_code == 201
    repo = open_repo(server.home, FixedClock(SystemClock().now()))
    for build, spl in (("1.0", "2026-01-01"), ("1.1", "2026-02-01"), ("1.2", "2026-03-01")):
        publish(repo, "alpha", build, spl)
    assert api.post("/api/releases/sync").status_code == 200
    device_id, credential = enroll(server, "SN-1")
    on_new_id, on_new = enroll(server, "SN-2")
    offered = decision(server, device_id, credential, "1.0")
    assert offered.full_target == "alpha/1.2/alpha-1.2.img"

    # The command line yanks 1.2: the director offers 1.1 instead, on its next reload.
    capsys.readouterr()
    assert cli_env("release", "yank", "alpha", "1.2", "--reason", "boot loop on rev B") == 0
    assert "Re-signed alpha/1.2/alpha-1.2.img" in capsys.readouterr().out

    def offered_target() -> str | None:
        return decision(server, device_id, credential, "1.0").full_target

    assert eventually(offered_target, "alpha/1.1/alpha-1.1.img") == "alpha/1.1/alpha-1.1.img"
    # A device already on 1.2 is not forced off it (nothing older is offered).
    assert decision(server, on_new_id, on_new, "1.2").action is Action.NONE
    # The signed eligibility lapsed: valid until today, in the repository and the listing.
    today = datetime.now(UTC).date().isoformat()
    assert api.post("/api/releases/sync").status_code == 200
    releases = {r["build"]: r for r in api.get("/api/releases", params={"model": "alpha"}).json()}
    full = {b: r for b, r in releases.items() if r["kind"] == "full"}
    assert full["1.2"]["yank_reason"] == "boot loop on rev B"
    assert full["1.2"]["yanked_at"] is not None
    assert full["1.2"]["eligibility"]["valid_until"] == today
    assert full["1.1"]["yanked_at"] is None
    signed = open_repo(server.home, FixedClock(SystemClock().now())).state()
    lapsed = {r.info.build: r.info.eligibility.valid_until for r in releases_of(signed, "alpha")}
    assert lapsed["1.2"] is not None
    assert lapsed["1.2"].isoformat() == today
    assert lapsed["1.1"] is None

    # The API yanks 1.1 (a release manager may): nothing newer is left to offer.
    manager = make_token(server.home, server.database_url, "rm", "release-manager", capsys)
    viewer = make_token(server.home, server.database_url, "v", "viewer", capsys)
    release_id = full["1.1"]["id"]
    body = {"reason": "regression in modem"}
    assert (
        server.client(viewer).post(f"/api/releases/{release_id}/yank", json=body).status_code == 403
    )
    yanked = server.client(manager).post(f"/api/releases/{release_id}/yank", json=body)
    assert yanked.status_code == 200, yanked.text
    assert yanked.json()["yank_reason"] == "regression in modem"
    assert yanked.json()["eligibility"]["valid_until"] == today
    assert decision(server, device_id, credential, "1.0").action is Action.NONE
    again = server.client(manager).post(f"/api/releases/{release_id}/yank", json=body)
    assert again.status_code == 409
    assert server.api().post("/api/releases/999/yank", json=body).status_code == 404

    entries = audit_entries(server, "yank")
    assert [(e["subject"], e["reason"]) for e in entries] == [
        ("alpha/1.2/alpha-1.2.img", "boot loop on rev B"),
        ("alpha/1.1/alpha-1.1.img", "regression in modem"),
    ]
    assert entries[1]["actor"] == "token:rm"
    assert {e["subject"] for e in audit_entries(server, "release-eligibility")} >= {
        "alpha/1.2/alpha-1.2.img",
        "alpha/1.1/alpha-1.1.img",
    }
    assert cli_env("audit", "verify") == 0
