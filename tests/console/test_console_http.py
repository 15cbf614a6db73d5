"""The console over plain HTTP: sign-in, the session cookie's flags, CSRF on every POST,
the API's roles, revoked tokens, assets served by the server itself, and support
promises through the API and the command line."""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from patchline.cli.main import main
from patchline.clock import SystemClock
from patchline.server.auth import Role, create_token
from patchline.store.db import Database
from tests.console.conftest import Fleet


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def sign_in(fleet: Fleet, role: str) -> httpx.Client:
    """A client holding a session signed in with ``role``'s token."""
    client = httpx.Client(base_url=fleet.server.url, timeout=30)
    form = client.get("/sign-in")
    signed = client.post(
        "/sign-in", data={"csrf": csrf_of(form.text), "token": fleet.tokens[role], "next": "/"}
    )
    assert signed.status_code == 303, signed.text
    return client


@pytest.fixture
def admin(fleet: Fleet) -> Iterator[httpx.Client]:
    client = sign_in(fleet, "admin")
    yield client
    client.close()


def test_pages_need_a_sign_in_and_the_cookie_is_httponly_and_strict(fleet: Fleet) -> None:
    client = httpx.Client(base_url=fleet.server.url, timeout=30)
    for path in ("/", "/rollouts", "/devices", "/compliance", "/support"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/sign-in?next=")
    form = client.get("/sign-in")
    refused = client.post("/sign-in", data={"csrf": csrf_of(form.text), "token": "pl_nope"})
    assert refused.status_code == 401
    assert "Unknown or revoked token" in refused.text
    signed = client.post(
        "/sign-in", data={"csrf": csrf_of(form.text), "token": fleet.tokens["viewer"]}
    )
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert fleet.tokens["viewer"] not in signed.headers["set-cookie"]
    assert client.get("/").status_code == 200


def test_a_post_without_the_sessions_csrf_token_is_refused(
    fleet: Fleet, admin: httpx.Client
) -> None:
    path = f"/rollouts/{fleet.rollout}/pause"
    assert admin.post(path, data={"reason": "no token"}).status_code == 403
    assert admin.post(path, data={"csrf": "forged", "reason": "bad token"}).status_code == 403
    other = sign_in(fleet, "admin")
    theirs = csrf_of(other.get("/").text)
    assert admin.post(path, data={"csrf": theirs}).status_code == 403
    assert fleet.server.api().get(f"/api/rollouts/{fleet.rollout}").json()["state"] == "active"


def test_the_roles_are_the_apis(fleet: Fleet) -> None:
    compliance = sign_in(fleet, "compliance")
    csrf = csrf_of(compliance.get(f"/rollouts/{fleet.rollout}").text)
    assert 'id="button-pause"' not in compliance.get(f"/rollouts/{fleet.rollout}").text
    refused = compliance.post(f"/rollouts/{fleet.rollout}/pause", data={"csrf": csrf})
    assert refused.status_code == 403
    assert "needs releases" in refused.text
    verified = compliance.post("/compliance/verify", data={"csrf": csrf})
    assert verified.status_code == 200
    assert "The chain is whole" in verified.text
    manager = sign_in(fleet, "release-manager")
    manager_csrf = csrf_of(manager.get("/").text)
    assert manager.post("/compliance/verify", data={"csrf": manager_csrf}).status_code == 403


def test_a_revoked_token_ends_its_sessions_at_once(fleet: Fleet) -> None:
    api = fleet.server.api()
    db = Database.connect(fleet.server.database_url)
    with db.transaction() as session:
        token = create_token(session, "short-lived", Role.VIEWER, SystemClock().now())
    db.dispose()
    client = httpx.Client(base_url=fleet.server.url, timeout=30)
    form = client.get("/sign-in")
    client.post("/sign-in", data={"csrf": csrf_of(form.text), "token": token})
    assert client.get("/devices").status_code == 200
    revoked = api.post("/api/tokens/short-lived/revoke", json={"reason": "left"})
    assert revoked.status_code == 200, revoked.text
    assert client.get("/devices").status_code == 303
    refresh = client.get("/", headers={"HX-Request": "true"})
    assert refresh.status_code == 204
    assert refresh.headers["hx-redirect"] == "/sign-in?next=/"


def test_every_asset_comes_from_the_server_itself(fleet: Fleet, admin: httpx.Client) -> None:
    for path in ("/", f"/rollouts/{fleet.rollout}", f"/devices/{fleet.devices[0]}"):
        html = admin.get(path).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources
        assert all(s.startswith("/") and not s.startswith("//") for s in sources), sources
        for asset in (s for s in sources if s.startswith("/console-static/")):
            assert admin.get(asset).status_code == 200, asset
    headers = admin.get("/").headers
    assert "script-src 'self'" in headers["content-security-policy"]


def test_the_device_list_filters_and_pages(fleet: Fleet, admin: httpx.Client) -> None:
    assert "6 devices match" in admin.get("/devices?model=beta").text
    assert "8 devices match" in admin.get("/devices?region=fr").text
    assert "1 devices match" in admin.get("/devices?q=SN017").text
    page = admin.get(f"/devices/{fleet.devices[0]}?at=2026-01-05")
    assert "What it is offered on 2026-01-05" in page.text
    missing = admin.get("/devices/no-such-device")
    assert missing.status_code == 404
    assert 'id="refusal"' in missing.text
    bad_date = admin.get(f"/devices/{fleet.devices[0]}?at=someday")
    assert bad_date.status_code == 422
    assert "Not accepted: at:" in bad_date.text


def test_support_promises_through_the_api_and_the_command_line(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    api = fleet.server.api()
    viewer = fleet.server.client(fleet.tokens["viewer"])
    body = {"security_until": "2031-06-30", "note": "five years (EU CRA)"}
    assert viewer.put("/api/support/alpha", json=body).status_code == 403
    assert api.put("/api/support/alpha", json={"security_until": "soon"}).status_code == 422
    stored = api.put("/api/support/alpha", json=body)
    assert stored.status_code == 200, stored.text
    assert stored.json()["set_by"] == "token:admin"
    rows = {r["model"]: r for r in viewer.get("/api/support").json()}
    assert rows["alpha"]["security_until"] == "2031-06-30"
    assert rows["alpha"]["past_support"] == 0
    assert rows["beta"]["past_support"] == 6
    saved = dict(os.environ)
    os.environ["PATCHLINE_DATABASE_URL"] = fleet.server.database_url
    try:
        home = str(fleet.server.home)
        assert main(["--home", home, "support", "set", "beta", "--until", "2024-12-31"]) == 0
        capsys.readouterr()
        assert main(["--home", home, "support", "list"]) == 0
        out = capsys.readouterr().out
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert "beta: until 2024-12-31; 6 devices, 6 past support" in out


def test_the_overview_counts_each_days_reports_by_status_and_source(
    fleet: Fleet, admin: httpx.Client
) -> None:
    html = admin.get("/").text
    charts = {
        name: json.loads(body)
        for name, body in re.findall(
            r'<script type="application/json" id="data-([a-z-]+)">(.*?)</script>', html
        )
    }
    outcomes = {d["label"]: sum(d["data"]) for d in charts["outcomes"]["datasets"]}
    assert outcomes == {"installed": 18, "booted-healthy": 15, "failed": 3, "rolled-back": 0}
    sources = {d["label"]: sum(d["data"]) for d in charts["sources"]["datasets"]}
    assert sources == {"server": 18, "mirror": 0, "card": 0}
    levels = charts["patch-levels"]
    assert sum(sum(d["data"]) for d in levels["datasets"]) == 24


def test_compliance_downloads_a_signed_export_that_verifies(
    fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compliance = sign_in(fleet, "compliance")
    csrf = csrf_of(compliance.get("/compliance").text)
    today = SystemClock().now().date().isoformat()
    answer = compliance.post(
        "/compliance/export", data={"csrf": csrf, "from": "2020-01-01", "to": today}
    )
    assert answer.status_code == 200, answer.text[:500]
    assert answer.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        assert sorted(archive.namelist()) == ["entries.jsonl", "summary.json"]
        archive.extractall(tmp_path / "export")
    assert main(["audit", "verify-export", str(tmp_path / "export")]) == 0
    backwards = compliance.post(
        "/compliance/export", data={"csrf": csrf, "from": today, "to": "2020-01-01"}
    )
    assert backwards.status_code == 422


def test_compliance_counts_deliveries_per_rule_that_allowed_them(
    fleet: Fleet, admin: httpx.Client
) -> None:
    # The 18 alpha devices were offered 1.1 under the security licence (priority 200 over
    # "normal"); 3 failed, 15 booted it healthy. No beta device was offered anything.
    page = admin.get("/compliance")
    assert page.status_code == 200
    table = page.text.split('id="deliveries"')[1].split("</table>")[0]
    rows = re.findall(r"<tr><td><b>([^<]+)</b></td><td>([\d,]+)</td><td>([\d,]+)</td></tr>", table)
    assert rows == [("licence-L1", "18", "15")]
    receipts = page.text.split('id="receipts"')[1].split("</table>")[0]
    assert "No offline install receipt yet." in receipts


def test_a_devices_page_shows_its_decisions_newest_first(fleet: Fleet, admin: httpx.Client) -> None:
    device = fleet.devices[1]  # alpha, offered 1.1 at its one check-in
    page = admin.get(f"/devices/{device}")
    assert page.status_code == 200
    table = page.text.split('id="decisions"')[1].split("</table>")[0]
    rows = table.count("<tr><td>")
    assert rows == 1, table
    assert "<b>install</b> 1.1" in table
    assert "<td>licence-L1</td>" in table
    assert "decisions-older" not in page.text
    beyond = admin.get(f"/devices/{device}?decisions_page=2")
    assert "No older decisions." in beyond.text
    assert 'id="decisions-newer"' in beyond.text
    assert admin.get(f"/devices/{device}?decisions_page=0").status_code == 422
    beta = admin.get(f"/devices/{fleet.devices[20]}").text  # enrolled, never checked in
    assert "No decision recorded yet." in beta


def test_a_release_manager_starts_a_rollout_from_the_console_and_a_viewer_cannot(
    fleet: Fleet,
) -> None:
    api = fleet.server.api()
    before = len(api.get("/api/rollouts").json())
    viewer = sign_in(fleet, "viewer")
    listing = viewer.get("/rollouts").text
    assert 'id="start-rollout"' not in listing
    form = {"model": "beta", "build": "1.0", "phases": "10, 100", "soak_hours": "2"}
    refused = viewer.post("/rollouts", data={"csrf": csrf_of(listing), **form})
    assert refused.status_code == 403
    manager = sign_in(fleet, "release-manager")
    page = manager.get("/rollouts").text
    assert 'id="start-rollout"' in page
    assert manager.post("/rollouts", data=form).status_code == 403  # no CSRF token
    csrf = csrf_of(page)
    for bad, status, words in (
        ({**form, "phases": "10, 50"}, 422, "last phase must cover 100 %"),
        ({**form, "phases": "ten"}, 422, "is not a percentage"),
        ({**form, "phases": "0, 100"}, 422, "greater than 0"),
        ({**form, "soak_hours": "-1"}, 422, "soak_hours"),
        ({**form, "build": "9.9"}, 404, "9.9"),
    ):
        answer = manager.post("/rollouts", data={"csrf": csrf, **bad})
        assert answer.status_code == status, (bad, answer.status_code)
        assert words in answer.text, (bad, answer.text[:2000])
    assert len(api.get("/api/rollouts").json()) == before
    # Starting a rollout needs a second person here: the form's rollout waits for one.
    held = manager.post("/rollouts", data={"csrf": csrf, **form, "regions": "DE, FR"})
    assert held.status_code == 303, held.text
    assert held.headers["location"] == "/rollouts?done=held"
    waiting = manager.get(held.headers["location"]).text
    assert "Held for a second person" in waiting
    assert "start a rollout of beta 1.0" in waiting
    assert len(api.get("/api/rollouts").json()) == before
    found = re.search(r'action="/proposals/(\d+)/approve"', waiting)
    assert found, waiting
    approve = f"/proposals/{found.group(1)}/approve"
    own = manager.post(approve, data={"csrf": csrf, "back": "/rollouts"})
    assert own.status_code == 403  # not by its proposer
    admin = sign_in(fleet, "admin")
    approved = admin.post(
        approve,
        data={"csrf": csrf_of(admin.get("/rollouts").text), "back": "/rollouts"},
    )
    assert approved.status_code == 303, approved.text
    [started] = [r for r in api.get("/api/rollouts").json() if r["model"] == "beta"]
    rollout_id = started["id"]
    shown = api.get(f"/api/rollouts/{rollout_id}").json()
    assert (shown["model"], shown["build"], shown["state"]) == ("beta", "1.0", "active")
    assert [p["share"] for p in shown["phases"]] == [1000, 10_000]
    assert shown["selection"] == {"regions": ["DE", "FR"]}
    assert shown["history"][0]["actor"] == "token:admin"  # applied on its approval
    again = manager.post("/rollouts", data={"csrf": csrf, **form})
    assert again.status_code == 409  # the release has an open rollout
    aborted = api.post(f"/api/rollouts/{rollout_id}/abort", json={"reason": "test over"})
    assert aborted.status_code == 200


def test_advancing_is_held_and_a_second_person_approves_it_from_the_console(
    fleet: Fleet,
) -> None:
    # Last in this module: it completes the rollout the other tests look at.
    manager = sign_in(fleet, "release-manager")
    csrf = csrf_of(manager.get(f"/rollouts/{fleet.rollout}").text)
    held = manager.post(f"/rollouts/{fleet.rollout}/advance", data={"csrf": csrf, "reason": "ok"})
    assert held.status_code == 303
    assert held.headers["location"].endswith("?done=held")
    page = manager.get(f"/rollouts/{fleet.rollout}").text
    assert "Held for a second person" in manager.get(held.headers["location"]).text
    found = re.search(r'action="/proposals/(\d+)/approve"', page)
    assert found, page
    approve = f"/proposals/{found.group(1)}/approve"
    own = manager.post(approve, data={"csrf": csrf, "back": "/rollouts"})
    assert own.status_code == 403
    assert fleet.server.api().get(f"/api/rollouts/{fleet.rollout}").json()["state"] == "active"
    viewer = sign_in(fleet, "viewer")
    assert 'action="/proposals/' not in viewer.get("/rollouts").text
    admin = sign_in(fleet, "admin")
    admin_csrf = csrf_of(admin.get("/rollouts").text)
    approved = admin.post(approve, data={"csrf": admin_csrf, "back": "/rollouts"})
    assert approved.status_code == 303, approved.text
    shown = fleet.server.api().get(f"/api/rollouts/{fleet.rollout}").json()
    assert shown["state"] == "completed"
    assert shown["history"][-1]["actor"] == "token:admin"
