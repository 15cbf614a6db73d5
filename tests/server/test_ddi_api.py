"""hawkBit's DDI API on a real port, over SQLite and PostgreSQL, as a client speaks it:
tokens (a wrong one changes nothing), one controller cannot reach another's action,
deployments with hashes and ranged downloads, feedback as install reports, configData
as claims."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import httpx

from tests.server.ddi_helpers import ALLOW_ALL, GATEWAY_TOKEN, DdiServer, ddi_server

__all__ = ["ddi_server"]

TOKEN_A = "token-of-controller-a-0123456789"
TOKEN_B = "token-of-controller-b-0123456789"


def _ready(server: DdiServer, tmp_path: Path) -> tuple[bytes, str]:
    assert server.api().post("/api/policies", json=ALLOW_ALL).status_code == 201
    server.publish_swu("1.1", tmp_path / "partition")
    server.enroll("ctl-a", TOKEN_A, "SN-A")
    server.enroll("ctl-b", TOKEN_B, "SN-B")
    swu = next((server.home / "public" / "targets" / "alpha" / "1.1").glob("*.swu"))
    return swu.read_bytes(), "alpha/1.1/alpha-1.1.swu"


def _state(server: DdiServer, controller_id: str) -> tuple[Any, ...]:
    device = server.device(controller_id)
    kinds = [r["kind"] for r in server.audit(controller_id)]
    return device["last_seen_at"], device["install_state"], device["reports"], kinds


def _feedback(execution: str, finished: str = "none", **extra: Any) -> dict[str, Any]:
    return {
        "id": "1",
        "time": "20261130T120000",
        "status": {"execution": execution, "result": {"finished": finished}, **extra},
    }


def test_wrong_tokens_get_401_and_change_nothing(ddi_server: DdiServer, tmp_path: Path) -> None:
    server = ddi_server
    _ready(server, tmp_path)
    before = _state(server, "ctl-a")
    base = f"{server.url}/DEFAULT/controller/v1/ctl-a"
    for headers in (
        {"Authorization": "TargetToken wrong-token-0123456789"},
        {"Authorization": f"TargetToken {TOKEN_B}"},  # another controller's token
        {"Authorization": "GatewayToken wrong-gateway-0123456789"},
        {"Authorization": f"Bearer {TOKEN_A}"},
        {},  # anonymous access is off
    ):
        assert httpx.get(base, headers=headers).status_code == 401
        response = httpx.post(
            f"{base}/deploymentBase/1/feedback",
            headers=headers,
            json=_feedback("closed", "success"),
        )
        assert response.status_code == 401
        response = httpx.put(f"{base}/configData", headers=headers, json={"data": {"a": "b"}})
        assert response.status_code == 401
    assert _state(server, "ctl-a") == before
    assert httpx.get(f"{server.url}/OTHER/controller/v1/ctl-a").status_code == 404
    a = server.controller("ctl-a", TOKEN_A)
    for path, method, body, status in (
        ("/deploymentBase/1/feedback", "POST", b"{not json", 400),
        ("/deploymentBase/1/feedback", "POST", b'{"status": {"execution": "done"}}', 400),
        ("/configData", "PUT", b'{"data": {"a": 1}}', 400),
        ("/configData", "PUT", b"x" * 70_000, 413),
        ("/configData", "GET", b"", 405),
        ("/deploymentBase/1/feedback", "GET", b"", 405),
        ("/deploymentBase/abc", "GET", b"", 404),
        ("/somethingElse", "GET", b"", 404),
        ("/softwaremodules/1/artifacts/x.swu", "GET", b"", 404),
    ):
        response = a.request(method, path, content=body)
        assert response.status_code == status, (path, response.text)
    assert _state(server, "ctl-a") == before
    gateway = {"Authorization": f"GatewayToken {GATEWAY_TOKEN}"}
    assert httpx.get(base, headers=gateway).status_code == 200


def test_a_controller_cannot_read_or_report_on_another_controllers_action(
    ddi_server: DdiServer, tmp_path: Path
) -> None:
    server = ddi_server
    _ready(server, tmp_path)
    a = server.controller("ctl-a", TOKEN_A)
    b = server.controller("ctl-b", TOKEN_B)
    href_a = a.get("").json()["_links"]["deploymentBase"]["href"]
    href_b = b.get("").json()["_links"]["deploymentBase"]["href"]
    action_a = href_a.rsplit("/", 1)[1]
    assert href_a != href_b
    assert b.get(f"/deploymentBase/{action_a}").status_code == 404
    before = _state(server, "ctl-a")
    assert (
        b.post(
            f"/deploymentBase/{action_a}/feedback", json=_feedback("closed", "failure")
        ).status_code
        == 404
    )
    assert a.get(f"/deploymentBase/{action_a}").status_code == 200
    assert _state(server, "ctl-a") == before
    assert server.device("ctl-b")["install_state"] == "offered"


def test_deployment_ranged_download_feedback_and_config_data(
    ddi_server: DdiServer, tmp_path: Path
) -> None:
    server = ddi_server
    swu, _target = _ready(server, tmp_path)
    a = server.controller("ctl-a", TOKEN_A)
    root = a.get("")
    assert root.status_code == 200
    links = root.json()["_links"]
    assert root.json()["config"]["polling"]["sleep"] == "00:00:01"
    assert "configData" in links
    deployment = a.get(links["deploymentBase"]["href"].split("/ctl-a", 1)[1]).json()
    assert deployment["deployment"]["update"] == "forced"  # a security release
    [chunk] = deployment["deployment"]["chunks"]
    assert chunk["version"] == "1.1"
    [artifact] = chunk["artifacts"]
    assert artifact["filename"] == "alpha-1.1.swu"
    assert artifact["size"] == len(swu)
    assert artifact["hashes"] == {
        "sha1": hashlib.sha1(swu).hexdigest(),  # noqa: S324
        "md5": hashlib.md5(swu).hexdigest(),  # noqa: S324
        "sha256": hashlib.sha256(swu).hexdigest(),
    }
    href = artifact["_links"]["download-http"]["href"]
    whole = httpx.get(href, headers={"Authorization": f"TargetToken {TOKEN_A}"})
    assert whole.content == swu
    part = httpx.get(
        href, headers={"Authorization": f"TargetToken {TOKEN_A}", "Range": "bytes=100-199"}
    )
    assert part.status_code == 206
    assert part.content == swu[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(swu)}"
    tail = httpx.get(
        href, headers={"Authorization": f"TargetToken {TOKEN_A}", "Range": "bytes=-10"}
    )
    assert tail.content == swu[-10:]
    beyond = httpx.get(
        href, headers={"Authorization": f"TargetToken {TOKEN_A}", "Range": f"bytes={len(swu)}-"}
    )
    assert beyond.status_code == 416
    assert httpx.get(href).status_code == 401
    md5sum = httpx.get(f"{href}.MD5SUM", headers={"Authorization": f"TargetToken {TOKEN_A}"})
    assert md5sum.text.split() == [hashlib.md5(swu).hexdigest(), "alpha-1.1.swu"]  # noqa: S324

    action = deployment["id"]
    progress = _feedback("proceeding", result={"finished": "none", "progress": {"cnt": 1, "of": 2}})
    assert a.post(f"/deploymentBase/{action}/feedback", json=progress).status_code == 200
    assert server.device("ctl-a")["install_state"] == "downloading"
    assert a.post(f"/deploymentBase/{action}/feedback", json={"status": {}}).status_code == 400
    done = _feedback("closed", "success", details=["Update Installed."])
    assert a.post(f"/deploymentBase/{action}/feedback", json=done).status_code == 200
    assert a.post(f"/deploymentBase/{action}/feedback", json=done).status_code == 200  # again
    device = server.device("ctl-a")
    assert device["build"] == "1.1"
    assert device["install_state"] == "booted-healthy"
    assert [r["status"] for r in device["reports"]].count("booted-healthy") == 1
    assert [r["source"] for r in device["reports"]] == ["ddi", "ddi"]
    assert [r["build"] for r in device["reports"]] == ["1.1", "1.1"]
    after = a.get("").json()["_links"]
    assert "deploymentBase" not in after
    installed = a.get(after["installedBase"]["href"].split("/ctl-a", 1)[1])
    assert installed.json()["id"] == action

    claim = {"mode": "merge", "data": {"hwRevision": "2", "region": "FR", "serial": "SN-A"}}
    assert a.put("/configData", json=claim).status_code == 200
    assert "configData" not in a.get("").json()["_links"]
    facts = server.api().get("/api/devices/ctl-a/facts").json()
    assert facts["region"] == "DE"  # vouched; the claim is kept and flagged
    assert facts["claimed_region"] == "FR"
    assert facts["region_claim_flagged_at"] is not None
    assert facts["claimed_attributes"] == claim["data"]
    attributes = [r for r in server.audit("ctl-a") if r["kind"] == "device-attributes"]
    assert attributes[-1]["payload"]["attributes"]["hwRevision"] == "2"


def test_an_install_the_server_withdraws_is_cancelled_and_not_counted_as_a_failure(
    ddi_server: DdiServer, tmp_path: Path
) -> None:
    server = ddi_server
    _ready(server, tmp_path)
    a = server.controller("ctl-a", TOKEN_A)
    offered = a.get("").json()["_links"]["deploymentBase"]["href"]
    action = offered.rsplit("/", 1)[1]
    hold = {"id": "hold-alpha", "effect": "block", "priority": 20, "models": ["alpha"]}
    assert server.api().post("/api/policies", json=hold).status_code == 201
    deadline = time.monotonic() + 20
    links: dict[str, Any] = {}
    while time.monotonic() < deadline and "cancelAction" not in links:
        time.sleep(0.2)
        links = a.get("").json()["_links"]
    assert links["cancelAction"]["href"].endswith(f"/cancelAction/{action}")
    assert "deploymentBase" not in links
    assert a.get(f"/cancelAction/{action}").json() == {
        "id": action,
        "cancelAction": {"stopId": action},
    }
    assert a.get(f"/deploymentBase/{action}").status_code == 404
    assert a.get("/cancelAction/12345").status_code == 404
    ack = _feedback("closed", "success", details=["cancellation acknowledged."])
    assert a.post(f"/cancelAction/{action}/feedback", json=ack).status_code == 200
    assert server.device("ctl-a")["install_state"] == "canceled"
    assert "cancelAction" not in a.get("").json()["_links"]
    assert [r["payload"]["state"] for r in server.audit("ctl-a") if r["kind"] == "cancel"] == [
        "canceled"
    ]
