"""Amendments keep both their times: a back-dated one must say so and why, and the
what-if answers as the rules stood on a day, as known now or as known on another day.

The server runs in-process on a real port with a clock the test moves, so that rules
and amendments are recorded on the days a compliance officer would record them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from patchline.clock import FixedClock
from patchline.demo.server_thread import ServerThread
from patchline.director.identity import create_director
from patchline.repository import Repository
from patchline.repository.passphrases import PassphraseSource
from patchline.server.app import create_app
from patchline.server.auth import Role, create_token
from patchline.settings import Settings
from patchline.store.db import Database
from patchline.store.migrate import upgrade
from patchline.store.models import AuditEntry
from tests.conftest import PASSPHRASE, publish
from tests.server.conftest import ENROLLMENT_TOKEN, free_port

LICENCE = {
    "id": "L-2018-07",
    "effect": "allow",
    "priority": 200,
    "update_classes": ["security"],
    "deployed_before": "2018-04-15",
    "valid_from": "2018-07-02",
    "valid_until": "2018-08-01",
}
DENIAL = {"id": "denial-2018", "effect": "block", "priority": 100, "valid_from": "2018-04-15"}


@dataclass
class ClockedServer:
    api: httpx.Client
    enroll: httpx.Client
    clock: FixedClock
    database_url: str

    def on(self, day: str) -> None:
        self.clock.set(datetime.fromisoformat(day).replace(hour=9, tzinfo=UTC))

    def what_if(self, device_id: str, **params: str) -> dict[str, Any]:
        response = self.api.get(f"/api/devices/{device_id}/explain", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def clocked(repo: Repository, database_url: str) -> Iterator[ClockedServer]:
    """The test repository served in-process on a clock set to 2018-07-01."""
    create_director(repo)
    publish(repo, "alpha", "1.1", spl="2018-06-05")
    clock = FixedClock(datetime(2018, 7, 1, 9, tzinfo=UTC))
    db = Database.connect(database_url)
    upgrade(db)
    with db.transaction() as session:
        token = create_token(session, "compliance", Role.ADMIN, clock.now())
    db.dispose()
    port = free_port()
    settings = Settings.from_env(
        {
            "PATCHLINE_ENROLLMENT_TOKEN": ENROLLMENT_TOKEN,
            "PATCHLINE_DATABASE_URL": database_url,
        },
        home=repo.layout.home,
        host="127.0.0.1",
        port=port,
    )
    server = ServerThread(
        create_app(
            settings,
            clock=clock,
            passphrases=PassphraseSource({"PATCHLINE_PASSPHRASE": PASSPHRASE}),
        ),
        "127.0.0.1",
        port,
    ).start()
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})
    enroll = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ENROLLMENT_TOKEN}"}
    )
    try:
        yield ClockedServer(api, enroll, clock, database_url)
    finally:
        api.close()
        enroll.close()
        server.stop()


def _enroll(server: ClockedServer, serial: str, deployed_on: str) -> str:
    response = server.enroll.post(
        "/v1/enroll",
        json={
            "model": "alpha",
            "serial": serial,
            "hardware_id": f"hw-{serial}",
            "region": "DE",
            "deployed_on": deployed_on,
            "build": "1.0",
            "security_patch_level": "2018-01-05",
        },
    )
    assert response.status_code == 201, response.text
    device_id: str = response.json()["device_id"]
    return device_id


def _amendment_audit(database_url: str) -> list[dict[str, Any]]:
    db = Database.connect(database_url)
    try:
        with db.transaction() as session:
            rows = session.scalars(
                select(AuditEntry)
                .where(AuditEntry.kind == "policy-amendment")
                .order_by(AuditEntry.seq)
            )
            return [json.loads(row.payload) for row in rows]
    finally:
        db.dispose()


def test_a_backdated_amendment_must_say_so_and_cannot_silently_rewrite_the_past(
    clocked: ClockedServer,
) -> None:
    for rule in (DENIAL, LICENCE):
        assert clocked.api.post("/api/policies", json=rule).status_code == 201
    assert clocked.api.post("/api/releases/sync").status_code == 200
    old = _enroll(clocked, "OLD", "2018-01-10")

    clocked.on("2018-07-25")
    extension = {"effective_from": "2018-07-20", "changes": {"valid_until": "2018-09-01"}}
    refused = clocked.api.post("/api/policies/L-2018-07/amendments", json=extension)
    assert refused.status_code == 422
    assert refused.json()["detail"] == (
        "amendment of rule L-2018-07 effective 2018-07-20 is back-dated: it takes effect "
        "before today (2018-07-25) and would change what the rules said on days already past"
    )
    no_reason = clocked.api.post(
        "/api/policies/L-2018-07/amendments", json={**extension, "backdated": True}
    )
    assert no_reason.status_code == 422
    not_backdated = clocked.api.post(
        "/api/policies/L-2018-07/amendments",
        json={**extension, "effective_from": "2018-07-25", "backdated": True, "reason": "x"},
    )
    assert not_backdated.status_code == 422
    assert "is not back-dated" in not_backdated.json()["detail"]
    assert clocked.api.get("/api/policies").json()[0]["amendments"] == []

    reason = "the ministry extended the licence by letter of 2018-07-20, received today"
    accepted = clocked.api.post(
        "/api/policies/L-2018-07/amendments",
        json={**extension, "backdated": True, "reason": reason},
    )
    assert accepted.status_code == 201, accepted.text
    [listed] = [p for p in clocked.api.get("/api/policies").json() if p["id"] == "L-2018-07"]
    [amendment] = listed["amendments"]
    assert amendment["backdated"] is True
    assert amendment["effective_from"] == "2018-07-20"
    assert amendment["recorded_at"].startswith("2018-07-25T09:00:00")
    assert amendment["summary"] == (
        f"back-dated: effective 2018-07-20, recorded 2018-07-25; reason: {reason}"
    )
    [audited] = _amendment_audit(clocked.database_url)
    assert audited["backdated"] is True
    assert audited["reason"] == reason
    assert audited["summary"] == amendment["summary"]
    label = f"amendment {amendment['id']} of 2018-07-20"

    # As the rules stood on 2018-08-10: with everything known now, the extension holds...
    clocked.on("2018-09-05")
    now = clocked.what_if(old, at="2018-08-10")
    assert now["decision"]["action"] == "install"
    assert now["known_on"] is None
    # ...as they were known on 2018-07-24, the licence had lapsed on 2018-08-01.
    then = clocked.what_if(old, at="2018-08-10", known_on="2018-07-24")
    assert then["decision"]["action"] == "none"
    assert "rule L-2018-07 lapsed on 2018-08-01" in then["decision"]["reasons"]
    assert [a["sequence"] for a in then["amendments_recorded_later"]] == [amendment["id"]]
    assert (
        clocked.what_if(old, at="2018-08-10", known_on="2018-07-25")["decision"]
        == (now["decision"])
    )
    known_then = clocked.api.get("/api/policies", params={"known_on": "2018-07-24"}).json()
    assert [p["amendments"] for p in known_then] == [[], []]
    assert clocked.api.get("/api/policies", params={"known_on": "2018-06-30"}).json() == []

    # The explanation names the amendment that set the end date in force.
    lapsed = clocked.what_if(old, at="2018-09-01")["decision"]["reasons"]
    assert f"rule L-2018-07 lapsed on 2018-09-01 ({label})" in lapsed


def test_a_licence_narrowing_is_named_as_what_keeps_a_build_out(
    clocked: ClockedServer,
) -> None:
    for rule in (DENIAL, LICENCE):
        assert clocked.api.post("/api/policies", json=rule).status_code == 201
    assert clocked.api.post("/api/releases/sync").status_code == 200
    late = _enroll(clocked, "LATE", "2018-05-01")
    reasons = clocked.what_if(late, at="2018-07-15")["decision"]["reasons"]
    assert (
        "build 1.1 (security update) is not offered: rule denial-2018 (priority 100) blocks "
        "all updates since 2018-04-15; rule L-2018-07 (priority 200), which would override "
        "it, does not cover this device: deployed 2018-05-01, not before 2018-04-15"
    ) in reasons

    clocked.on("2018-07-10")
    narrowing = {"effective_from": "2018-07-10", "changes": {"deployed_before": "2018-01-01"}}
    amended = clocked.api.post("/api/policies/L-2018-07/amendments", json=narrowing)
    assert amended.status_code == 201, amended.text
    label = f"amendment {amended.json()['amendments'][0]['id']} of 2018-07-10"
    old = _enroll(clocked, "OLD", "2018-01-10")
    reasons = clocked.what_if(old, at="2018-07-15")["decision"]["reasons"]
    assert any(
        r.endswith(
            "does not cover this device: deployed 2018-01-10, not before 2018-01-01 "
            f"(as narrowed by {label})"
        )
        for r in reasons
    )
