"""Reports of every install step, queued on disk and sent to the server later.

Each report is one file in the device's outbox, written atomically, so a report made
offline or just before kill -9 is never lost; it is removed only when the server has
acknowledged its ``report_id`` (sending twice is harmless: the id makes it idempotent).
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from pathlib import Path

import msgspec
import urllib3

from patchline.agent.spool import send_in_batches
from patchline.fsutil import write_atomic
from patchline.transport.device_api_client import DeviceApiClient
from patchline.wire.device_api import Report, ReportBatch, ReportCode, ReportStatus


def new_report(
    *,
    target: str,
    build: str,
    status: ReportStatus,
    at: datetime,
    code: ReportCode = ReportCode.NONE,
    detail: str = "",
    source: str = "",
    delta: bool = False,
    report_id: str = "",
) -> Report:
    """A report with ``report_id``, or a fresh one (uuid4)."""
    return Report(
        report_id=report_id or str(uuid.uuid4()),
        target=target[:256],
        build=build,
        status=status,
        at=at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        code=code,
        detail=detail[:4096],
        source=source[:256],
        delta=delta,
    )


class Outbox:
    """The reports waiting in ``folder``, oldest first."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def add(self, report: Report) -> Path:
        """Queue ``report`` durably; return its file. A report already queued under
        the same id is kept as it is (queueing again after a power cut adds nothing)."""
        for queued in self.folder.glob(f"*-{report.report_id}.json"):
            return queued
        path = self.folder / f"{time.time_ns():020d}-{report.report_id}.json"
        write_atomic(path, msgspec.json.encode(report))
        return path

    def pending(self) -> list[tuple[Path, Report]]:
        """Every queued report with its file, in the order they were made."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                found.append((path, msgspec.json.decode(path.read_bytes(), type=Report)))
            except (OSError, msgspec.ValidationError, msgspec.DecodeError):
                continue  # a torn file cannot exist (atomic writes); skip anything foreign
        return found

    def send(self, pool: urllib3.PoolManager, server_url: str, credential: str) -> int:
        """POST queued reports to ``server_url``/v1/reports in batches; drop the ones the
        server acknowledged. Returns how many were acknowledged.

        Raises SourceUnreachableError when the server cannot be reached or refuses;
        whatever was not acknowledged stays queued.
        """
        client = DeviceApiClient(pool, server_url)
        return send_in_batches(
            self.pending(),
            lambda reports: client.send_reports(credential, ReportBatch(reports)).accepted,
            lambda report: report.report_id,
        )
