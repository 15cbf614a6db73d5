"""Publishing under the rules held for a second person, on real servers over SQLite and
PostgreSQL: the upload waits with the proposal and is signed only when a release manager
other than the publisher approves it; one no rule allows is refused, not proposed."""

from __future__ import annotations

import httpx
import pytest

from tests.server.conftest import RunningServer, make_token
from tests.server.test_publish_under_rules import LICENCE


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"PATCHLINE_TWO_PERSON_ACTIONS": "release.publish-under-rules"}


def _publish(server: RunningServer, token: str, build: str, update_class: str) -> httpx.Response:
    return server.client(token).post(
        "/api/releases",
        files={"image": (f"alpha-{build}.img", f"image {build}".encode() * 100)},
        data={
            "model": "alpha",
            "build": build,
            "security_patch_level": "2026-05-01",
            "update_class": update_class,
            "under_rules": "true",
        },
    )


def test_a_release_is_signed_under_the_rules_only_once_a_second_person_approves(
    served: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    carol = make_token(served.home, served.database_url, "carol", "release-manager", capsys)
    dave = make_token(served.home, served.database_url, "dave", "release-manager", capsys)
    auditor = make_token(served.home, served.database_url, "erin", "compliance", capsys)
    assert served.api().post("/api/policies", json=LICENCE).status_code == 201
    refused = _publish(served, carol, "3", "functional")
    assert refused.status_code == 409, refused.text
    assert served.api().get("/api/proposals").json() == []

    held = _publish(served, carol, "2", "security")
    assert held.status_code == 202, held.text
    proposal = held.json()
    assert proposal["action"] == "release.publish-under-rules"
    assert served.api().get("/api/releases").json() == []
    assert served.client(carol).post(f"/api/proposals/{proposal['id']}/approve").status_code == 403
    # compliance may not publish, so it may not approve a publication either
    assert (
        served.client(auditor).post(f"/api/proposals/{proposal['id']}/approve").status_code == 403
    )

    approved = served.client(dave).post(f"/api/proposals/{proposal['id']}/approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["result"]["eligibility"]["rule"] == "licence"
    [release] = served.api().get("/api/releases").json()
    assert release["build"] == "2"
    assert not list((served.home / "proposals").iterdir())
    verified = served.api().get("/api/audit/verify").json()
    assert verified["ok"] is True
