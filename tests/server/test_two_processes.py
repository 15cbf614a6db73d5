"""Two server processes on one PostgreSQL under 10,000 concurrent check-ins and reports:
the audit chain verifies, no acknowledged report is lost, and the counts add up."""

from __future__ import annotations

import asyncio
import hashlib
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import msgspec
import pytest
from sqlalchemy import func, select, text

from patchline.audit import verify
from patchline.director.identity import create_director
from patchline.repository import Repository
from patchline.store.db import Base, Database
from patchline.store.models import AuditEntry, InstallReport
from patchline.wire.device_api import (
    CheckIn,
    Network,
    Report,
    ReportBatch,
    ReportStatus,
    Slot,
    SlotState,
)
from tests.conftest import image_bytes, publish
from tests.server.conftest import ENROLLMENT_TOKEN, make_token, start_server, stop_server

pytestmark = pytest.mark.long  # minutes: `make test-long`

DEVICES = 400
REQUESTS = 10_000
CONCURRENCY = 200


@pytest.fixture
def pg_url(postgres_server_url: str) -> str:
    db = Database.connect(postgres_server_url)
    with db.engine.begin() as conn:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.dispose()
    return postgres_server_url


@pytest.fixture
def two_servers(
    repo: Repository, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> Iterator[tuple[list[str], str]]:
    create_director(repo)
    publish(repo, "alpha", "1.0")
    publish(repo, "alpha", "1.1", "2026-02-01")
    home = repo.layout.home
    first = start_server(home, pg_url)
    second = start_server(home, pg_url)
    token = make_token(home, pg_url, "admin", "admin", capsys)
    urls = [f"http://127.0.0.1:{p.port}" for p in (first, second)]  # type: ignore[attr-defined]
    yield urls, token
    stop_server(first)
    stop_server(second)


async def _load(urls: list[str], token: str) -> tuple[set[str], int, int]:
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        rule = {"id": "normal", "title": "all", "effect": "allow", "priority": 1}
        response = await client.post(
            f"{urls[0]}/api/policies", json=rule, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 201
        await client.post(
            f"{urls[1]}/api/releases/sync", headers={"Authorization": f"Bearer {token}"}
        )
        credentials: list[str] = []
        enroll_headers = {"Authorization": f"Bearer {ENROLLMENT_TOKEN}"}
        for i in range(DEVICES):
            body = {
                "model": "alpha",
                "serial": f"S{i}",
                "hardware_id": f"H{i}",
                "region": "DE",
                "deployed_on": "2026-01-01",
                "build": "1.0",
                "security_patch_level": "2026-01-01",
            }
            enrolled = await client.post(
                f"{urls[i % 2]}/v1/enroll", json=body, headers=enroll_headers
            )
            assert enrolled.status_code == 201, enrolled.text
            credentials.append(enrolled.json()["credential"])
        build_hash = hashlib.sha256(image_bytes("alpha/1.0")).hexdigest()
        rng = random.Random(7)
        acked: set[str] = set()
        sent_reports: list[tuple[str, bytes]] = []
        failures = 0
        checkins = 0
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(i: int) -> None:
            nonlocal failures, checkins
            credential = rng.choice(credentials)
            url = urls[i % 2]
            headers = {"Authorization": f"Bearer {credential}"}
            async with gate:
                if i % 3 == 0 and sent_reports and i % 9 == 0:
                    # the same report again, to the other server: idempotent
                    cred, body = rng.choice(sent_reports)
                    path, headers = "/v1/reports", {"Authorization": f"Bearer {cred}"}
                elif i % 3 == 0:
                    report = Report(
                        report_id=str(uuid.uuid4()),
                        target="alpha/1.1/alpha-1.1.img",
                        build="1.1",
                        status=rng.choice(list(ReportStatus)),
                        at=datetime.now(UTC).isoformat(),
                    )
                    body = msgspec.json.encode(ReportBatch(reports=[report]))
                    sent_reports.append((credential, body))
                    path = "/v1/reports"
                else:
                    checkin = CheckIn(
                        build="1.0",
                        build_sha256=build_hash,
                        security_patch_level="2026-01-01",
                        slot=SlotState(active=Slot.A),
                        free_bytes=10**9 + rng.randrange(10),
                        battery_percent=rng.randrange(30, 100),
                        network=Network.WIFI,
                    )
                    body = msgspec.json.encode(checkin)
                    path = "/v1/check-in"
                response = await client.post(url + path, content=body, headers=headers)
            if response.status_code != 200:
                failures += 1
                return
            if path == "/v1/reports":
                acked.update(response.json()["accepted"])
            else:
                checkins += 1

        await asyncio.gather(*(one(i) for i in range(REQUESTS)))
        return acked, failures, checkins


def test_two_servers_keep_one_chain_and_lose_no_report(
    two_servers: tuple[list[str], str], pg_url: str
) -> None:
    urls, token = two_servers
    acked, failures, checkins = asyncio.run(_load(urls, token))
    assert failures == 0
    assert checkins > 6000
    db = Database.connect(pg_url)
    result = verify(db)
    assert result.ok, result.problem
    with db.transaction() as session:
        stored = set(session.scalars(select(InstallReport.report_id)))
        report_entries = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.kind == "report")
        )
        decisions = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.kind == "decision")
        )
    db.dispose()
    assert acked <= stored  # every acknowledged report is durable
    assert len(stored) == len(acked)  # and nothing else was stored
    assert report_entries == len(stored)  # one audit entry per report, duplicates not re-logged
    assert decisions is not None
    assert 0 < decisions <= DEVICES * 2  # logged when a device's decision changes, not per poll
    assert result.count >= len(stored) + DEVICES + decisions
