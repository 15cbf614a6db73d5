"""Publishing through the management API under the delivery rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.conftest import tree_digest
from tests.server.conftest import RunningServer
from tests.server.test_bad_input import counts

UNTIL = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
BAN = {"id": "ban", "title": "Denial order", "effect": "block", "priority": 100}
LICENCE = {
    "id": "licence",
    "title": "Temporary licence",
    "effect": "allow",
    "priority": 200,
    "update_classes": ["security"],
    "deployed_before": "2026-01-01",
    "regions_excluded": ["KP"],
    "valid_until": UNTIL,
}


def _publish(server: RunningServer, build: str, update_class: str) -> httpx.Response:
    return server.api().post(
        "/api/releases",
        files={"image": (f"alpha-{build}.img", f"image {build}".encode() * 100)},
        data={
            "model": "alpha",
            "build": build,
            "security_patch_level": "2026-05-01",
            "update_class": update_class,
            "regions_excluded": "CU",
            "under_rules": "true",
        },
    )


def test_a_release_the_licence_allows_is_signed_with_its_limits_and_the_publishers(
    server: RunningServer,
) -> None:
    for rule in (BAN, LICENCE):
        assert server.api().post("/api/policies", json=rule).status_code == 201
    published = _publish(server, "2", "security")
    assert published.status_code == 201, published.text
    assert published.json()["eligibility"] == {
        "regions_allowed": [],
        "regions_excluded": ["CU", "KP"],
        "deployed_before": "2026-01-01",
        "valid_until": UNTIL,
        "rule": "licence",
    }


def test_a_release_no_rule_allows_is_refused_naming_the_rule_and_nothing_changes(
    server: RunningServer,
) -> None:
    for rule in (BAN, LICENCE):
        assert server.api().post("/api/policies", json=rule).status_code == 201
    before = counts(server), tree_digest(server.home / "public")
    refused = _publish(server, "2", "functional")
    assert refused.status_code == 409
    assert "not signed: rule ban (priority 100) blocks all updates" in refused.json()["detail"]
    assert (counts(server), tree_digest(server.home / "public")) == before
