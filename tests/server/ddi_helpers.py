"""A server with the hawkBit DDI API on a real port, controllers enrolled through the
command line, and SWUpdate images published as releases."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from patchline.cli.main import main
from patchline.clock import FixedClock, SystemClock
from patchline.director.identity import create_director
from patchline.repository import ReleaseRequest, Repository, add_release
from patchline.repository.swu_image import SwuSpec, build_swu, write_test_certificate
from patchline.store.db import Database
from patchline.store.models import AuditEntry
from patchline.wire.release import UpdateClass
from tests.conftest import image_bytes, open_repo
from tests.server.conftest import make_token, start_server, stop_server

TENANT = "DEFAULT"
GATEWAY_TOKEN = "gateway-token-0123456789"
ALLOW_ALL = {"id": "normal", "title": "Normal operations", "effect": "allow", "priority": 10}


@dataclass
class DdiServer:
    """A running server, its admin token, and the signing certificate of its maker."""

    url: str
    home: Path
    database_url: str
    admin_token: str
    cert: Path
    key: Path

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=30
        )

    def controller(self, controller_id: str, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"TargetToken {token}"} if token else {}
        return httpx.Client(
            base_url=f"{self.url}/{TENANT}/controller/v1/{controller_id}",
            headers=headers,
            timeout=30,
        )

    def enroll(self, controller_id: str, token: str, serial: str, **facts: str) -> None:
        """``patchline device enroll-ddi`` with the token the device already has."""
        args = {
            "--model": "alpha",
            "--serial": serial,
            "--region": "DE",
            "--deployed-on": "2026-01-10",
            "--build": "1.0",
            "--security-patch-level": "2026-01-01",
            **{f"--{k.replace('_', '-')}": v for k, v in facts.items()},
        }
        argv = ["--home", str(self.home), "device", "enroll-ddi", controller_id, "--token", token]
        for name, value in args.items():
            argv += [name, value]
        os.environ["PATCHLINE_DATABASE_URL"] = self.database_url
        try:
            assert main(argv) == 0
        finally:
            del os.environ["PATCHLINE_DATABASE_URL"]

    def publish_swu(
        self,
        build: str,
        partition: Path | str,
        spl: str = "2026-02-01",
        update_class: UpdateClass = UpdateClass.SECURITY,
    ) -> tuple[bytes, str]:
        """Publish alpha ``build`` as a signed .swu writing its image to ``partition``;
        sync it into the server. Returns the raw image and the target path."""
        work = self.home.parent / f"swu-{build}"
        work.mkdir(exist_ok=True)
        raw = work / "rootfs.img"
        raw.write_bytes(image_bytes(f"alpha/{build}/rootfs", 96 * 1024))
        swu_file = work / f"alpha-{build}.swu"
        build_swu(
            SwuSpec(image=raw, version=build, device=str(partition)), swu_file, self.key, self.cert
        )
        self.publish_file(build, swu_file, spl, update_class)
        return raw.read_bytes(), f"alpha/{build}/alpha-{build}.swu"

    def publish_file(
        self,
        build: str,
        image: Path,
        spl: str = "2026-02-01",
        update_class: UpdateClass = UpdateClass.SECURITY,
    ) -> None:
        """Publish ``image`` as alpha ``build`` and sync it into the server."""
        repo: Repository = open_repo(self.home, FixedClock(SystemClock().now()))
        add_release(
            repo,
            ReleaseRequest(
                image=image,
                model="alpha",
                build=build,
                security_patch_level=date.fromisoformat(spl),
                update_class=update_class,
            ),
        )
        response = self.api().post("/api/releases/sync")
        assert response.status_code == 200, response.text

    def audit(self, subject: str) -> list[dict[str, Any]]:
        """The audit records about ``subject``, oldest first, payloads decoded."""
        db = Database.connect(self.database_url)
        try:
            with db.engine.connect() as conn:
                rows = conn.execute(
                    select(AuditEntry).where(AuditEntry.subject == subject).order_by(AuditEntry.seq)
                ).mappings()
                return [
                    {"kind": r["kind"], "actor": r["actor"], "payload": json.loads(r["payload"])}
                    for r in rows
                ]
        finally:
            db.dispose()

    def device(self, controller_id: str) -> dict[str, Any]:
        response = self.api().get(f"/api/devices/{controller_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data


@pytest.fixture
def ddi_server(
    repo: Repository, database_url: str, capsys: pytest.CaptureFixture[str]
) -> Iterator[DdiServer]:
    """The repository with a director, served with the DDI API polling every second."""
    create_director(repo)
    home = repo.layout.home
    env = {"PATCHLINE_DDI_POLL_SECONDS": "1", "PATCHLINE_DDI_GATEWAY_TOKEN": GATEWAY_TOKEN}
    process = start_server(home, database_url, env=env)
    token = make_token(home, database_url, "admin", "admin", capsys)
    cert, key = write_test_certificate(home.parent / "maker", "Test maker")
    yield DdiServer(
        f"http://127.0.0.1:{process.port}",  # type: ignore[attr-defined]
        home,
        database_url,
        token,
        cert,
        key,
    )
    stop_server(process)
