"""Reports are never lost when the server refuses them; downloads resume with Range."""

from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
from tuf.api.metadata import TargetFile

from patchline.agent.device import Limits
from patchline.agent.reports import Outbox, new_report
from patchline.agent.transfer import HttpOpener, download_verified
from patchline.clock import SystemClock
from patchline.errors import SlowRetrievalError, SourceUnreachableError, TargetRefusedError
from patchline.transport.http import http_pool
from patchline.wire.device_api import ReportStatus
from tests.agent.conftest import closed_port_url
from tests.agent.hosts import RangeHost
from tests.conftest import image_bytes


def queued(folder: Path, n: int) -> Outbox:
    outbox = Outbox(folder)
    for i in range(n):
        outbox.add(
            new_report(
                target="alpha/2.0/alpha-2.0.img",
                build=f"2.{i}",
                status=ReportStatus.INSTALLED,
                at=SystemClock().now(),
            )
        )
    return outbox


def test_reports_stay_queued_in_order_when_the_server_is_unreachable(tmp_path: Path) -> None:
    outbox = queued(tmp_path / "outbox", 3)
    with pytest.raises(SourceUnreachableError, match="connection refused"):
        outbox.send(http_pool(1, 1), closed_port_url(), "dev.secret")
    assert [r.build for _, r in outbox.pending()] == ["2.0", "2.1", "2.2"]


class _Refusing(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_reports_stay_queued_when_the_server_refuses_them(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        outbox = queued(tmp_path / "outbox", 2)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(SourceUnreachableError, match="HTTP 503"):
            outbox.send(http_pool(1, 1), url, "dev.secret")
        assert len(outbox.pending()) == 2
    finally:
        server.shutdown()
        server.server_close()


def target_for(data: bytes) -> TargetFile:
    return TargetFile.from_data("img/image.img", data, ["sha256"])


def test_a_partial_download_resumes_from_where_it_stopped(
    tmp_path: Path, hosts: Callable[..., RangeHost]
) -> None:
    data = image_bytes("resume", 256 * 1024)
    (tmp_path / "srv" / "targets").mkdir(parents=True)
    (tmp_path / "srv" / "targets" / "image.img").write_bytes(data)
    host = hosts(tmp_path / "srv")
    staging = tmp_path / "slot_b.img.part"
    staging.write_bytes(data[:100_000])

    download_verified(
        HttpOpener(http_pool(1, 2)),
        f"{host.url}/targets/image.img",
        target_for(data),
        staging,
        Limits(),
    )

    assert staging.read_bytes() == data
    (served,) = host.target_requests()
    assert served.range == "bytes=100000-"
    assert served.body_bytes == len(data) - 100_000


def test_a_host_that_ignores_range_is_downloaded_again_from_the_start(
    tmp_path: Path, hosts: Callable[..., RangeHost]
) -> None:
    data = image_bytes("resume", 128 * 1024)
    (tmp_path / "srv" / "targets").mkdir(parents=True)
    (tmp_path / "srv" / "targets" / "image.img").write_bytes(data)
    host = hosts(tmp_path / "srv", ignore_range=True)
    staging = tmp_path / "slot_b.img.part"
    staging.write_bytes(b"x" * 1000)  # a wrong prefix: a range answer would fail the hash

    download_verified(
        HttpOpener(http_pool(1, 2)),
        f"{host.url}/targets/image.img",
        target_for(data),
        staging,
        Limits(),
    )
    assert staging.read_bytes() == data


def test_a_wrong_prefix_left_on_disk_is_caught_by_the_hash_and_removed(
    tmp_path: Path, hosts: Callable[..., RangeHost]
) -> None:
    data = image_bytes("resume", 128 * 1024)
    (tmp_path / "srv" / "targets").mkdir(parents=True)
    (tmp_path / "srv" / "targets" / "image.img").write_bytes(data)
    host = hosts(tmp_path / "srv")
    staging = tmp_path / "slot_b.img.part"
    staging.write_bytes(b"x" * 1000)

    with pytest.raises(TargetRefusedError, match="tampered"):
        download_verified(
            HttpOpener(http_pool(1, 2)),
            f"{host.url}/targets/image.img",
            target_for(data),
            staging,
            Limits(),
        )
    assert not staging.exists()


def test_a_download_past_the_overall_deadline_is_refused_and_kept_for_resuming(
    tmp_path: Path, hosts: Callable[..., RangeHost]
) -> None:
    data = image_bytes("slow", 512 * 1024)
    (tmp_path / "srv" / "targets").mkdir(parents=True)
    (tmp_path / "srv" / "targets" / "image.img").write_bytes(data)
    host = hosts(tmp_path / "srv", bytes_per_second=128 * 1024)  # 4 s in all
    staging = tmp_path / "slot_b.img.part"

    with pytest.raises(SlowRetrievalError, match="did not finish within 1 s"):
        download_verified(
            HttpOpener(http_pool(1, 5)),
            f"{host.url}/targets/image.img",
            target_for(data),
            staging,
            Limits(deadline_seconds=1, min_bytes_per_second=1),
        )
    assert 0 < staging.stat().st_size < len(data)
    assert staging.read_bytes() == data[: staging.stat().st_size]
