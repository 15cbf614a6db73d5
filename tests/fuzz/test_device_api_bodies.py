"""Bounded fuzzing of the device API's request decoding on a real server: genuine
enrollment, check-in, report and receipt bodies, mangled as bytes or with any JSON
value swapped in, are answered with a refusal that means it (400, 401, 409, 413, 422)
or accepted -- never a 5xx, never a dead server."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchline.director.identity import create_director
from patchline.repository import Repository
from patchline.wire.device_api import (
    CheckIn,
    Network,
    Report,
    ReportBatch,
    ReportStatus,
    Slot,
    SlotState,
)
from patchline.wire.receipt import Receipt, ReceiptBatch, sign
from tests.conftest import image_bytes, publish
from tests.fuzz.mutations import hostile_json
from tests.server.conftest import (
    ENROLLMENT_TOKEN,
    RunningServer,
    make_token,
    start_server,
    stop_server,
)
from tests.server.test_device_flow import ALLOW_ALL, enroll

ANSWERED = {200, 201, 400, 401, 409, 413, 422}


@pytest.fixture
def live(
    repo: Repository, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Iterator[tuple[RunningServer, str]]:
    """A server (SQLite) with a rule and a release, and an enrolled device's credential."""
    create_director(repo)
    publish(repo, "alpha", "1.0")
    url = f"sqlite:///{tmp_path / 'server.db'}"
    process = start_server(repo.layout.home, url)
    token = make_token(repo.layout.home, url, "admin", "admin", capsys)
    running = RunningServer(
        f"http://127.0.0.1:{process.port}",  # type: ignore[attr-defined]
        repo.layout.home,
        url,
        process,
        token,
    )
    running.api().post("/api/policies", json=ALLOW_ALL)
    _, credential = enroll(running, "SN-FUZZ")
    yield running, credential
    stop_server(process)


def genuine_bodies() -> dict[str, bytes]:
    """A valid body for each device endpoint."""
    check_in = CheckIn(
        build="1.0",
        build_sha256=hashlib.sha256(image_bytes("alpha/1.0")).hexdigest(),
        security_patch_level="2026-01-01",
        slot=SlotState(active=Slot.A),
        free_bytes=10**9,
        battery_percent=80,
        network=Network.WIFI,
    )
    reports = ReportBatch(
        reports=[
            Report(
                report_id=str(uuid.uuid4()),
                target="alpha/1.0/alpha-1.0.img",
                build="1.0",
                status=ReportStatus.DOWNLOADING,
                at=datetime.now(UTC).isoformat(),
            )
        ]
    )
    enrollment = {
        "model": "alpha",
        "serial": "SN-NEW",
        "hardware_id": "hw-SN-NEW",
        "region": "DE",
        "deployed_on": "2026-01-10",
        "build": "1.0",
        "security_patch_level": "2026-01-01",
    }
    key = Ed25519PrivateKey.generate()  # not the device's key: the receipt is refused
    receipt = Receipt(
        receipt_id=str(uuid.uuid4()),
        device_id="someone",
        bundle_id="0" * 16,
        bundle_version=1,
        model="alpha",
        build="1.0",
        from_build="0.9",
        target="alpha/1.0/alpha-1.0.img",
        sha256="0" * 64,
        security_patch_level="2026-01-01",
        installed_at="2026-01-02T00:00:00Z",
        delta=False,
    )
    return {
        "/v1/check-in": msgspec.json.encode(check_in),
        "/v1/reports": msgspec.json.encode(reports),
        "/v1/receipts": msgspec.json.encode(ReceiptBatch(receipts=[sign(receipt, key)])),
        "/v1/enroll": msgspec.json.encode(enrollment),
    }


def test_hostile_device_api_bodies_never_get_a_server_error(
    live: tuple[RunningServer, str],
) -> None:
    server, credential = live
    bodies = genuine_bodies()
    cases = st.sampled_from(sorted(bodies)).flatmap(
        lambda path: st.tuples(st.just(path), hostile_json(bodies[path]))
    )
    client = httpx.Client(base_url=server.url, timeout=30)

    @settings(
        max_examples=250,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(cases)
    def run(case: tuple[str, bytes]) -> None:
        path, body = case
        bearer = ENROLLMENT_TOKEN if path == "/v1/enroll" else credential
        response = client.post(
            path,
            content=body,
            headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"},
        )
        assert response.status_code in ANSWERED, (path, body, response.text)

    with client:
        run()
        assert server.process.poll() is None
        assert client.get("/healthz").status_code == 200
        for path, body in bodies.items():
            bearer = ENROLLMENT_TOKEN if path == "/v1/enroll" else credential
            answer = client.post(path, content=body, headers={"Authorization": f"Bearer {bearer}"})
            assert answer.status_code in ANSWERED, (path, answer.text)
