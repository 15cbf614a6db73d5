"""A licence extended by an amendment reaches the releases already signed under it:
``patchline release resign --under-rules`` re-signs them wider, naming the amendment; the
director and devices with no server (an SD card, a mirror) follow."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from patchline.agent import Agent, DeviceDir
from patchline.clock import FixedClock
from patchline.errors import UpdateRefusedError
from patchline.repository import Repository
from patchline.repository.bundles import add_offline_key, export_bundle
from patchline.repository.releases import releases_of
from patchline.store.db import Database
from patchline.store.models import AuditEntry
from patchline.wire.release import AmendmentRef
from tests.agent.conftest import hosts, make_device  # noqa: F401  (fixtures, shared)
from tests.agent.hosts import RangeHost
from tests.cli.test_cli import run
from tests.conftest import START, image_bytes, open_repo, tree_digest
from tests.server.conftest import RunningServer
from tests.server.test_device_flow import enroll

LICENCE = {
    "id": "L-2018-07",
    "title": "Temporary general licence",
    "effect": "allow",
    "priority": 200,
    "update_classes": ["security"],
    "valid_from": "2018-07-02",
    "valid_until": "2018-08-01",
}
DENIAL = {"id": "denial-2018", "effect": "block", "priority": 100, "valid_from": "2018-04-15"}
EXTENSION = {
    "effective_from": "2018-07-20",
    "changes": {"valid_until": "2018-09-01"},
    "note": "licence extended to 1 September",
    "backdated": True,
    "reason": "the licence was extended on 2018-07-20; recorded for the replay",
}
MID_AUGUST = date(2018, 8, 15)


def _cli(capsys: pytest.CaptureFixture[str], server: RunningServer, *args: str) -> str:
    code, out = run(
        capsys, "--home", str(server.home), *args, "--database-url", server.database_url
    )
    assert code == 0, out
    return out


def _what_if(server: RunningServer, device_id: str) -> dict[str, Any]:
    response = server.api().get(
        f"/api/devices/{device_id}/explain", params={"at": MID_AUGUST.isoformat()}
    )
    assert response.status_code == 200, response.text
    decision: dict[str, Any] = response.json()["decision"]
    return decision


def _eligibility_entries(database_url: str) -> list[dict[str, Any]]:
    db = Database.connect(database_url)
    try:
        with db.transaction() as session:
            rows = session.scalars(
                select(AuditEntry)
                .where(AuditEntry.kind == "release-eligibility")
                .order_by(AuditEntry.seq)
            )
            return [json.loads(row.payload) for row in rows]
    finally:
        db.dispose()


def _agent_update(device: DeviceDir) -> str:
    clock = FixedClock(datetime.combine(MID_AUGUST, datetime.min.time(), UTC))
    return Agent(device, clock=clock).update().build


def test_an_extended_licence_reaches_a_release_signed_under_it_online_and_offline(
    server: RunningServer,
    repo: Repository,
    make_device: Callable[..., DeviceDir],  # noqa: F811
    hosts: Callable[..., RangeHost],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    add_offline_key(repo)
    api = server.api()
    for rule in (DENIAL, LICENCE):
        assert api.post("/api/policies", json=rule).status_code == 201
    image = tmp_path / "alpha-1.1.img"
    image.write_bytes(image_bytes("alpha/1.1"))
    out = _cli(
        capsys,
        server,
        *("release", "add", str(image), "--model", "alpha", "--build", "1.1"),
        *("--security-patch-level", "2026-02-01", "--class", "security"),
        *("--under-rules", "--as-of", "2018-07-10"),
    )
    assert "rule L-2018-07 (priority 200) allows security updates" in out
    assert api.post("/api/releases/sync").status_code == 200
    device_id, _ = enroll(server, "OLD", deployed_on="2018-01-10")
    refused = _what_if(server, device_id)
    assert refused["action"] == "none"
    assert any("release validity ended on 2018-08-01" in r for r in refused["reasons"])

    early_card = tmp_path / "early-card"
    export_bundle(open_repo(server.home, FixedClock(START)), "alpha", early_card)
    with pytest.raises(UpdateRefusedError, match="release validity ended on 2018-08-01"):
        _agent_update(make_device("early", bundles=[str(early_card)]))

    # Re-signing with no amendment behind it changes nothing, not a byte.
    before = tree_digest(server.home / "public")
    out = _cli(capsys, server, "release", "resign", "--under-rules", "--as-of", "2018-07-25")
    assert "Every release is as the rules in force on 2018-07-25 allow." in out
    assert tree_digest(server.home / "public") == before

    amended = api.post("/api/policies/L-2018-07/amendments", json=EXTENSION)
    assert amended.status_code == 201, amended.text
    amendment_id = amended.json()["amendments"][0]["id"]
    ref = AmendmentRef(id=amendment_id, effective_from=date(2018, 7, 20))
    out = _cli(capsys, server, "release", "resign", "--under-rules", "--as-of", "2018-07-25")
    assert f"Re-signed alpha/1.1/alpha-1.1.img (widened under {ref.label})" in out

    [signed] = releases_of(open_repo(server.home, FixedClock(START)).state(), "alpha")
    assert signed.info.eligibility.valid_until == date(2018, 9, 1)
    assert signed.info.eligibility.rule == "L-2018-07"
    assert signed.info.eligibility.amendment == ref

    assert api.post("/api/releases/sync").status_code == 200
    [entry] = _eligibility_entries(server.database_url)
    assert entry["change"] == "widened"
    assert entry["amendment"] == {"id": amendment_id, "effective_from": "2018-07-20"}
    assert entry["summary"] == f"eligibility widened under rule L-2018-07 ({ref.label})"
    offered = _what_if(server, device_id)
    assert offered["action"] == "install", offered["reasons"]
    assert offered["release"]["build"] == "1.1"

    # No server: an SD card made now, and a mirror of the public tree.
    card = tmp_path / "card"
    export_bundle(open_repo(server.home, FixedClock(START)), "alpha", card)
    offline = make_device("card", bundles=[str(card)])
    assert _agent_update(offline) == "1.1"
    mirror = hosts(server.home / "public")
    assert _agent_update(make_device("mirror", mirrors=[mirror.url])) == "1.1"
