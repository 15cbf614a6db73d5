"""The LineageOS updater's feed (``/api/v1/{device}/{type}/{incremental}``) on a real
port: the director's decision for an unidentified device of the model on that build, so
rules (region-limited ones fail closed), blocks and rollouts apply to it."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx

from tests.conftest import image_bytes
from tests.server.ddi_helpers import ALLOW_ALL, DdiServer, ddi_server

__all__ = ["ddi_server"]


def _publish_zips(server: DdiServer, tmp_path: Path) -> bytes:
    for build, spl in (("1.0", "2026-01-01"), ("1.1", "2026-02-01")):
        package = tmp_path / "ota" / build / f"alpha-{build}.zip"
        package.parent.mkdir(parents=True)
        package.write_bytes(image_bytes(f"alpha/{build}/ota"))
        server.publish_file(build, package, spl)
    return image_bytes("alpha/1.1/ota")


def _feed(server: DdiServer, incremental: str = "1.0") -> list[dict[str, object]]:
    response = httpx.get(f"{server.url}/api/v1/alpha/nightly/{incremental}")
    assert response.status_code == 200, response.text
    builds: list[dict[str, object]] = response.json()["response"]
    return builds


def test_the_feed_lists_what_the_rules_allow_an_unidentified_device(
    ddi_server: DdiServer, tmp_path: Path
) -> None:
    server = ddi_server
    api = server.api()
    package = _publish_zips(server, tmp_path)
    assert _feed(server) == []  # no rule covers it: default deny
    only_de = {"id": "de-only", "effect": "allow", "priority": 10, "regions_allowed": ["DE"]}
    assert api.post("/api/policies", json=only_de).status_code == 201
    assert _feed(server) == []  # its region is unknown: a region-limited rule fails closed

    assert api.post("/api/policies", json=ALLOW_ALL).status_code == 201
    [build] = _feed(server)
    assert build["version"] == "1.1"
    assert build["romtype"] == "nightly"
    assert build["filename"] == "alpha-1.1.zip"
    assert build["size"] == len(package)
    assert build["id"] == hashlib.sha256(package).hexdigest()
    assert isinstance(build["datetime"], int)
    assert build["datetime"] > 0
    assert httpx.get(str(build["url"])).content == package
    assert _feed(server, "1.1") == []  # already on the newest
    assert _feed(server, "9.9") == []  # not a signed build of the model
    assert httpx.post(f"{server.url}/api/v1/alpha/nightly/1.0").status_code == 405
    assert httpx.get(f"{server.url}/api/devices").status_code == 401  # the rest of /api
    hold = {"id": "hold-alpha", "effect": "block", "priority": 20, "models": ["alpha"]}
    assert api.post("/api/policies", json=hold).status_code == 201
    assert _eventually_empty(server)


def test_a_release_under_a_rollout_is_not_on_the_feed(
    ddi_server: DdiServer, tmp_path: Path
) -> None:
    server = ddi_server
    api = server.api()
    _publish_zips(server, tmp_path)
    assert api.post("/api/policies", json=ALLOW_ALL).status_code == 201
    assert [b["version"] for b in _feed(server)] == ["1.1"]
    rollout = {"model": "alpha", "build": "1.1", "phases": [{"percent": 100, "soak_hours": 1}]}
    assert api.post("/api/rollouts", json=rollout).status_code == 201
    assert _eventually_empty(server)  # even at 100 %: rollouts reach enrolled devices


def _eventually_empty(server: DdiServer) -> bool:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if _feed(server) == []:
            return True
        time.sleep(0.2)
    return False
