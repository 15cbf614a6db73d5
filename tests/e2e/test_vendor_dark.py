"""A device from build 1 to 2 through the server, then from a mirror with the server
killed, then from an SD-card folder with no network at all; every report reaches the
server in the end, and a device that moved forward while the server was away is not
taken for one that rolled back."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from patchline.agent import Agent, DeviceConfig, create_device
from patchline.agent.enrollment import enroll
from patchline.clock import FixedClock, SystemClock
from patchline.demo.static_host import StaticHost
from patchline.director.identity import create_director, director_root_path
from patchline.errors import NoUpdateSourceError
from patchline.repository import Repository
from patchline.store.db import Database
from patchline.store.models import AuditEntry
from patchline.transport.http import http_pool
from tests.agent.conftest import FAST_LIMITS
from tests.conftest import image_bytes, open_repo, publish
from tests.server.conftest import (
    ENROLLMENT_TOKEN,
    free_port,
    make_token,
    start_server,
    stop_server,
)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'server.db'}"


@dataclass
class DarkWorld:
    """The maker's server with an allow-all rule, a mirror copied from its repository, and
    an enrolled device on 1.0 whose sources are the server, then the mirror (then cards)."""

    home: Path
    port: int
    server: subprocess.Popen[bytes]
    api: httpx.Client
    mirror: StaticHost
    mirror_dir: Path
    device_id: str
    agent: Agent


def dark_world(
    repo: Repository,
    tmp_path: Path,
    sqlite_url: str,
    capsys: pytest.CaptureFixture[str],
    serial: str,
    bundles: list[str],
) -> DarkWorld:
    create_director(repo)
    publish(repo, "alpha", "1.0")
    publish(repo, "alpha", "1.1", "2026-02-01")
    home = repo.layout.home
    port = free_port()
    server = start_server(home, sqlite_url, port)
    server_url = f"http://127.0.0.1:{port}"
    token = make_token(home, sqlite_url, "admin", "admin", capsys)
    api = httpx.Client(base_url=server_url, headers={"Authorization": f"Bearer {token}"})
    rule = {"id": "normal", "title": "all", "effect": "allow", "priority": 1}
    assert api.post("/api/policies", json=rule).status_code == 201
    mirror_dir = tmp_path / "mirror"
    shutil.copytree(repo.layout.public_dir, mirror_dir)
    mirror = StaticHost(mirror_dir).start()
    factory = tmp_path / "factory.img"
    factory.write_bytes(image_bytes("alpha/1.0"))
    device = create_device(
        tmp_path / "phone",
        DeviceConfig(
            model="alpha",
            region="DE",
            deployed_on="2026-01-05",
            server_url=server_url,
            server_repository_url=f"{server_url}/repository",
            mirrors=[mirror.url],
            bundles=bundles,
            limits=FAST_LIMITS,
        ),
        shipped_root=repo.layout.metadata_file("root", 1).read_bytes(),
        director_root=director_root_path(home).read_bytes(),
        image=factory,
        build="1.0",
        security_patch_level=date(2026, 1, 1),
    )
    device_id = enroll(
        device, http_pool(2, 10), token=ENROLLMENT_TOKEN, serial=serial, hardware_id=f"HW-{serial}"
    )
    agent = Agent(device, clock=SystemClock())
    return DarkWorld(home, port, server, api, mirror, mirror_dir, device_id, agent)


def test_server_then_mirror_then_sd_card(
    repo: Repository, tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sdcard = tmp_path / "sdcard"
    world = dark_world(repo, tmp_path, sqlite_url, capsys, "SN-1", [str(sdcard)])
    home, port, server, api = world.home, world.port, world.server, world.api
    mirror, mirror_dir, device_id, agent = (
        world.mirror,
        world.mirror_dir,
        world.device_id,
        world.agent,
    )
    try:
        # 1. Through the server: the director's signed decision, bytes from its repository.
        first = agent.update()
        assert (first.status, first.build) == ("installed", "1.1")
        assert first.source.startswith("Server")
        seen = api.get(f"/api/devices/{device_id}").json()
        assert seen["install_state"] == "booted-healthy"
        assert {r["status"] for r in seen["reports"]} >= {
            "downloading",
            "installed",
            "booted-healthy",
        }

        # 2. The maker's server goes dark; a mirror still carries 1.2.
        publish(open_repo(home, FixedClock(SystemClock().now())), "alpha", "1.2", "2026-03-01")
        shutil.copytree(repo.layout.public_dir, mirror_dir, dirs_exist_ok=True)
        stop_server(server)
        second = agent.update()
        assert (second.status, second.build) == ("installed", "1.2")
        assert mirror.url in second.source
        assert any("Server" in a.source and "refused" in a.reason for a in second.attempts)

        # 3. No network at all: an SD card with 1.3.
        publish(open_repo(home, FixedClock(SystemClock().now())), "alpha", "1.3", "2026-04-01")
        mirror.stop()
        shutil.copytree(repo.layout.public_dir, sdcard)
        third = agent.update()
        assert (third.status, third.build) == ("installed", "1.3")
        assert str(sdcard) in third.source
        assert len(agent.outbox.pending()) > 0  # reports wait for the server

        # 4. Nothing anywhere: a plain error naming every source tried.
        shutil.rmtree(sdcard)
        with pytest.raises(NoUpdateSourceError) as refused:
            agent.update()
        message = str(refused.value)
        assert "Server" in message
        assert "What to do" in message

        # 5. The server is back: every queued report arrives, none lost.
        server = start_server(home, sqlite_url, port)
        queued = len(agent.outbox.pending())
        assert agent.send_reports() == queued
        assert agent.outbox.pending() == []
        builds = {
            (r["build"], r["status"])
            for r in api.get(f"/api/devices/{device_id}").json()["reports"]
        }
        assert ("1.2", "booted-healthy") in builds
        assert ("1.3", "booted-healthy") in builds
        assert api.get("/api/audit/verify").json()["ok"] is True
    finally:
        stop_server(server)
        mirror.stop()


def test_a_device_that_moved_forward_from_a_mirror_while_the_server_was_down_is_not_rolled_back(
    repo: Repository, tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    world = dark_world(repo, tmp_path, sqlite_url, capsys, "SN-2", [])
    home, port, server, api = world.home, world.port, world.server, world.api
    mirror, mirror_dir, device_id, agent = (
        world.mirror,
        world.mirror_dir,
        world.device_id,
        world.agent,
    )
    try:
        # The server assigns 1.1 and the device installs it.
        assert agent.update().build == "1.1"
        seen = api.get(f"/api/devices/{device_id}").json()
        assert (seen["assigned_build"], seen["install_state"]) == ("1.1", "booted-healthy")

        # The server goes down; the maker signs 1.2 and a mirror carries it.
        publish(open_repo(home, FixedClock(SystemClock().now())), "alpha", "1.2", "2026-03-01")
        shutil.copytree(repo.layout.public_dir, mirror_dir, dirs_exist_ok=True)
        stop_server(server)
        moved = agent.update()
        assert (moved.status, moved.build) == ("installed", "1.2")
        assert mirror.url in moved.source

        # The server is back and the device checks in (then sends its queued reports).
        server = start_server(home, sqlite_url, port)
        assert agent.update().status == "up-to-date"
        assert agent.outbox.pending() == []
        seen = api.get(f"/api/devices/{device_id}").json()
        assert seen["build"] == "1.2"
        assert seen["install_state"] == "booted-healthy"
        assert seen["assigned_build"] == "1.2"
        assert seen["security_patch_level"] == "2026-03-01"
        rolled_back = api.get("/api/devices", params={"install_state": "rolled-back"}).json()
        assert rolled_back["total"] == 0
        assert api.get("/api/audit/verify").json()["ok"] is True
    finally:
        stop_server(server)
        mirror.stop()
    db = Database.connect(sqlite_url)
    try:
        with db.transaction() as session:
            payloads = list(
                session.scalars(
                    select(AuditEntry.payload).where(
                        AuditEntry.kind == "reconcile", AuditEntry.subject == device_id
                    )
                )
            )
    finally:
        db.dispose()
    states = [json.loads(p)["state"] for p in payloads]
    assert "rolled-back" not in states
    assert any("superseded" in json.loads(p)["event"] for p in payloads)
