"""kill -9 of the server while devices check in and report: every report the server
acknowledged is in the database after a restart, the audit chain still verifies, and
the devices' unacknowledged reports are taken when sent again (once each)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
import pytest
from sqlalchemy import select

from patchline.director.identity import create_director
from patchline.repository import Repository
from patchline.store.db import Database
from patchline.store.models import InstallReport
from patchline.wire.device_api import Report, ReportAck, ReportBatch, ReportStatus
from tests.conftest import publish
from tests.server.conftest import RunningServer, free_port, make_token, start_server
from tests.server.test_device_flow import ALLOW_ALL, check_in, enroll

DEVICES = 4


class Device(threading.Thread):
    """Checks in and sends one report at a time until the server goes away."""

    def __init__(self, server: RunningServer, credential: str) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.credential = credential
        self.sent: list[str] = []
        self.acknowledged: set[str] = set()
        self.check_ins = 0

    def run(self) -> None:
        with self.server.client(self.credential) as client:
            while True:
                report = Report(
                    report_id=str(uuid.uuid4()),
                    target="alpha/1.0/alpha-1.0.img",
                    build="1.0",
                    status=ReportStatus.DOWNLOADING,
                    at=datetime.now(UTC).isoformat(),
                )
                self.sent.append(report.report_id)
                try:
                    answer = client.post(
                        "/v1/reports", content=msgspec.json.encode(ReportBatch(reports=[report]))
                    )
                    if answer.status_code == 200:
                        ack = msgspec.json.decode(answer.content, type=ReportAck)
                        self.acknowledged.update(ack.accepted)
                    check_in(self.server, self.credential)
                    self.check_ins += 1
                except httpx.HTTPError:
                    return


def descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (the ASGI server's workers)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


def kill_9(pid: int) -> None:
    """SIGKILL the server and its workers at once, as a power cut would stop them."""
    for victim in [pid, *descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)


def stored_reports(database_url: str) -> set[str]:
    db = Database.connect(database_url)
    try:
        with db.transaction() as session:
            return set(session.scalars(select(InstallReport.report_id)))
    finally:
        db.dispose()


@pytest.mark.long
def test_kill_9_during_check_ins_and_reports_loses_nothing_acknowledged(
    repo: Repository, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    create_director(repo)
    publish(repo, "alpha", "1.0")
    home = repo.layout.home
    port = free_port()
    process = start_server(home, database_url, port)
    token = make_token(home, database_url, "admin", "admin", capsys)
    server = RunningServer(f"http://127.0.0.1:{port}", home, database_url, process, token)
    assert server.api().post("/api/policies", json=ALLOW_ALL).status_code == 201
    devices = [Device(server, enroll(server, f"SN-K{i}")[1]) for i in range(DEVICES)]
    for device in devices:
        device.start()
    deadline = time.monotonic() + 20
    while sum(len(d.acknowledged) for d in devices) < 24:
        assert time.monotonic() < deadline, "the devices made too little progress"
        time.sleep(0.05)

    workers = descendants(process.pid)
    assert workers, "the server runs its application in worker processes"
    kill_9(process.pid)
    process.wait()
    for device in devices:
        device.join(timeout=30)
        assert not device.is_alive()

    acknowledged = set().union(*(d.acknowledged for d in devices))
    assert acknowledged <= stored_reports(database_url)

    process = start_server(home, database_url, port)
    try:
        server.process = process
        resent: set[str] = set()
        for device in devices:
            again = [r for r in device.sent if r not in device.acknowledged]
            assert check_in(server, device.credential).status_code == 200
            if not again:
                continue
            batch = ReportBatch(
                reports=[
                    Report(
                        report_id=r,
                        target="alpha/1.0/alpha-1.0.img",
                        build="1.0",
                        status=ReportStatus.DOWNLOADING,
                        at=datetime.now(UTC).isoformat(),
                    )
                    for r in again
                ]
            )
            with server.client(device.credential) as client:
                answer = client.post("/v1/reports", content=msgspec.json.encode(batch))
            assert answer.status_code == 200, answer.text
            resent |= set(again)
        sent = {r for d in devices for r in d.sent}
        assert stored_reports(database_url) == sent == acknowledged | resent
        assert server.api().get("/api/audit/verify").json()["ok"] is True
    finally:
        process.terminate()
        process.wait(timeout=20)
