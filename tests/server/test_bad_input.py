"""Bad input gets a clear 4xx, never a 500, and changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest
from sqlalchemy import func, select

from patchline.store.db import Database
from patchline.store.models import AuditEntry, Device, InstallReport, Policy
from tests.server.conftest import ENROLLMENT_TOKEN, RunningServer, make_token
from tests.server.test_device_flow import ALLOW_ALL, check_in, enroll


def counts(server: RunningServer) -> dict[str, Any]:
    db = Database.connect(server.database_url)
    with db.transaction() as session:
        result = {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Device, InstallReport, Policy, AuditEntry)
        }
        result["devices"] = [
            (d.id, d.build, d.install_state, d.last_seen_at)
            for d in session.scalars(select(Device))
        ]
    db.dispose()
    return result


def test_device_api_refuses_bad_requests_without_changing_state(server: RunningServer) -> None:
    server.api().post("/api/policies", json=ALLOW_ALL)
    device_id, credential = enroll(server, "SN-1")
    other_id, other_credential = enroll(server, "SN-2")
    good = check_in(server, credential).request.content  # a real check-in: state settles
    before = counts(server)
    secret = credential.partition(".")[2]
    cases: list[tuple[str, dict[str, str], bytes, int, str]] = [
        ("/v1/check-in", {"Authorization": f"Bearer {credential}"}, b"{not json", 400, "malformed"),
        (
            "/v1/check-in",
            {"Authorization": f"Bearer {credential}"},
            b'{"build": 5}',
            422,
            "invalid",
        ),
        (
            "/v1/check-in",
            {"Authorization": f"Bearer {credential}"},
            b'{"build":"1.0","extra":1}',
            422,
            "invalid",
        ),
        (
            "/v1/check-in",
            {"Authorization": f"Bearer {credential}"},
            good.replace(b"2026-01-01", b"2026-13-45"),
            422,
            "invalid security_patch_level",
        ),
        ("/v1/check-in", {}, good, 401, "unknown device or wrong credential"),
        ("/v1/check-in", {"Authorization": "Bearer nobody.nothing"}, good, 401, "unknown device"),
        ("/v1/check-in", {"Authorization": f"Bearer {device_id}.wrong"}, good, 401, "credential"),
        # One device presenting its own secret under another device's id: refused.
        ("/v1/check-in", {"Authorization": f"Bearer {other_id}.{secret}"}, good, 401, "credential"),
        ("/v1/check-in", {"Authorization": f"Bearer {credential}"}, b"x" * 70_000, 413, "larger"),
        (
            "/v1/reports",
            {"Authorization": f"Bearer {credential}"},
            b'{"reports": []}',
            422,
            "invalid",
        ),
        ("/v1/reports", {"Authorization": f"Bearer {other_credential}x"}, b"{}", 401, "credential"),
        ("/v1/enroll", {"Authorization": "Bearer wrong-token"}, b"{}", 401, "enrollment token"),
        (
            "/v1/enroll",
            {"Authorization": f"Bearer {ENROLLMENT_TOKEN}"},
            b'{"model": "alpha"}',
            422,
            "invalid",
        ),
        ("/v1/nothing", {}, b"{}", 404, "no device endpoint"),
    ]
    client = server.client()
    for path, headers, body, status, message in cases:
        response = client.post(path, content=body, headers=headers)
        assert response.status_code == status, (path, body[:40], response.text)
        assert message in response.json()["error"]
    assert client.get("/v1/check-in").status_code == 405
    # A device credential is not a management token: no device can read another's decision.
    explain = client.get(
        f"/api/devices/{other_id}/explain", headers={"Authorization": f"Bearer {credential}"}
    )
    assert explain.status_code == 401
    after = counts(server)
    assert after == before


def test_enrolling_a_serial_with_other_hardware_is_a_conflict(server: RunningServer) -> None:
    enroll(server, "SN-9")
    response = server.client(ENROLLMENT_TOKEN).post(
        "/v1/enroll",
        json={
            "model": "alpha",
            "serial": "SN-9",
            "hardware_id": "another-board",
            "region": "DE",
            "deployed_on": "2026-01-10",
            "build": "1.0",
            "security_patch_level": "2026-01-01",
        },
    )
    assert response.status_code == 409
    assert "other hardware" in response.json()["error"]


def test_roles_are_enforced_and_bad_bodies_refused(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    viewer = make_token(server.home, server.database_url, "viewer", "viewer", capsys)
    server.api().post("/api/policies", json={**ALLOW_ALL, "valid_from": "2026-01-01"})
    releaser = make_token(server.home, server.database_url, "rm", "release-manager", capsys)
    before = counts(server)
    as_viewer = server.client(viewer)
    publish = as_viewer.post(
        "/api/releases",
        files={"image": ("alpha-9.img", b"image bytes")},
        data={
            "model": "alpha",
            "build": "9",
            "security_patch_level": "2026-05-01",
            "update_class": "security",
        },
    )
    assert publish.status_code == 403
    assert "viewer may not" in publish.json()["detail"]
    assert as_viewer.post("/api/policies", json=ALLOW_ALL).status_code == 403
    assert server.client(releaser).post("/api/policies", json=ALLOW_ALL).status_code == 403
    assert server.client("pl_not-a-token").get("/api/devices").status_code == 401
    assert server.client().get("/api/devices").status_code == 401
    api = server.api()
    bad_rule = api.post("/api/policies", json={"id": "x", "effect": "maybe", "priority": 1})
    assert bad_rule.status_code == 422
    assert [e["loc"] for e in bad_rule.json()["detail"]] == [["body", "effect"]]
    missing = api.post(
        "/api/policies/none/amendments",
        json={"effective_from": "2026-01-01", "changes": {"priority": 3}},
    )
    assert missing.status_code == 404
    breaking = api.post(
        "/api/policies/normal/amendments",
        json={
            "effective_from": "2026-02-01",
            "changes": {"valid_until": "2025-12-01"},
            "backdated": True,
            "reason": "a correction",
        },
    )
    assert breaking.status_code == 422
    assert "leaves it invalid" in breaking.json()["detail"]
    assert api.get("/api/policies").json()[0]["amendments"] == []
    assert api.get(f"/api/devices/{uuid.uuid4().hex}").status_code == 404
    assert api.get("/api/devices?page=0").status_code == 422
    assert api.patch("/api/releases/999", json={"min_battery_percent": 10}).status_code == 404
    assert api.patch("/api/releases/1", json={"min_battery_percent": 101}).status_code == 422
    bad_publish = server.client(releaser).post(
        "/api/releases",
        files={"image": ("alpha-0.img", b"image bytes")},
        data={
            "model": "nope",
            "build": "1",
            "security_patch_level": "2026-05-01",
            "update_class": "security",
        },
    )
    assert bad_publish.status_code == 404
    assert "unknown model" in bad_publish.json()["detail"]
    assert counts(server) == before
    assert msgspec.json.decode(api.get("/api/audit/verify").content)["ok"] is True


def test_a_device_re_enrolled_through_another_process_is_recognised(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.server.conftest import start_server, stop_server

    monkeypatch.setenv("PATCHLINE_CREDENTIAL_RECHECK_SECONDS", "0")
    other = start_server(server.home, server.database_url)
    try:
        other_url = f"http://127.0.0.1:{other.port}"  # type: ignore[attr-defined]
        server.api().post("/api/policies", json=ALLOW_ALL)
        device_id, old = enroll(server, "SN-R")
        assert check_in(server, old).status_code == 200
        body = check_in(server, old).request.content
        import httpx

        def other_check_in(credential: str) -> int:
            headers = {"Authorization": f"Bearer {credential}"}
            return httpx.post(f"{other_url}/v1/check-in", content=body, headers=headers).status_code

        assert other_check_in(old) == 200  # the other process now caches the old credential
        again, new = enroll(server, "SN-R")  # factory reset: same hardware, new credential
        assert again == device_id
        assert other_check_in(new) == 200
        assert other_check_in(old) == 401
    finally:
        stop_server(other)
