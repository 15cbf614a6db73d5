"""PostgreSQL away under load (the server reaches it through a TCP proxy that is cut,
then restored; the real database server is never touched): the device API answers
503 with Retry-After -- never 401, never a 5xx of another kind -- and, once the
database is back, the same server process takes reports and check-ins again by
itself; every report is stored once. Real agents told 503 wait a jittered time
before asking again (saved, so later runs skip the server and say so), then update."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from patchline.agent import Agent, DeviceDir, Limits
from patchline.agent.enrollment import enroll as agent_enroll
from patchline.agent.state import load_state
from patchline.clock import FixedClock, SystemClock
from patchline.director.identity import create_director, director_root_path
from patchline.errors import NoUpdateSourceError
from patchline.repository import Repository
from patchline.store.db import Base, Database
from patchline.store.models import InstallReport
from patchline.transport.http import http_pool
from patchline.wire.device_api import Report, ReportBatch, ReportStatus
from tests.agent import conftest as agent_fixtures
from tests.conftest import publish
from tests.faults.tcp_proxy import TcpProxy
from tests.server.conftest import (
    ENROLLMENT_TOKEN,
    RunningServer,
    make_token,
    start_server,
    stop_server,
)
from tests.server.test_device_flow import ALLOW_ALL, check_in, enroll, publish_via_repo

make_device = agent_fixtures.make_device


@pytest.fixture
def proxied_postgres(postgres_server_url: str) -> Iterator[tuple[str, TcpProxy]]:
    """The test database, emptied, and its URL through a proxy that can be cut."""
    db = Database.connect(postgres_server_url)
    with db.engine.begin() as conn:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.dispose()
    url = make_url(postgres_server_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    yield url.set(port=proxy.port).render_as_string(hide_password=False), proxy
    proxy.cut()


@pytest.fixture
def proxied_server(
    repo: Repository,
    proxied_postgres: tuple[str, TcpProxy],
    capsys: pytest.CaptureFixture[str],
) -> Iterator[tuple[RunningServer, TcpProxy]]:
    """A served repository with a director, on PostgreSQL through the proxy."""
    url, proxy = proxied_postgres
    create_director(repo)
    home = repo.layout.home
    process = start_server(home, url)
    try:
        token = make_token(home, url, "admin", "admin", capsys)
        port = process.port  # type: ignore[attr-defined]
        yield RunningServer(f"http://127.0.0.1:{port}", home, url, process, token), proxy
    finally:
        stop_server(process)


def agent_device(
    make_device: Callable[..., DeviceDir], server: RunningServer, serial: str
) -> DeviceDir:
    """A device of model alpha on build 1.0, enrolled with ``server`` by its agent, with
    the agent's default time limits (a server slowed by the outage is not a dead one)."""
    device = make_device(
        serial, region="DE", deployed_on="2026-01-10", server_url=server.url, limits=Limits()
    )
    device.director_root.write_bytes(director_root_path(server.home).read_bytes())
    agent_enroll(
        device, http_pool(2, 10), token=ENROLLMENT_TOKEN, serial=serial, hardware_id=f"hw-{serial}"
    )
    return device


def not_before(device: DeviceDir) -> datetime:
    """When the device will ask its server again (it must be waiting)."""
    backoff = load_state(device).server_backoff
    assert backoff is not None, "the device is not waiting for its server"
    return datetime.fromisoformat(backoff.not_before)


@pytest.mark.postgres
def test_an_agent_told_503_skips_the_server_until_its_wait_is_over_then_updates(
    proxied_server: tuple[RunningServer, TcpProxy],
    make_device: Callable[..., DeviceDir],
) -> None:
    server, proxy = proxied_server
    assert server.api().post("/api/policies", json=ALLOW_ALL).status_code == 201
    publish_via_repo(server)
    device = agent_device(make_device, server, "SN-WAIT1")
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    asked_at = clock.now()

    proxy.cut()
    with pytest.raises(NoUpdateSourceError, match="HTTP 503") as first:
        Agent(device, clock=clock).update()

    assert "try again shortly" in first.value.message
    wait_until = not_before(device)
    assert asked_at + timedelta(seconds=10) <= wait_until <= asked_at + timedelta(seconds=21)
    assert load_state(device).running.build == "1.0"

    # The database is back, but the device was told to wait: it does not ask yet.
    proxy.open()
    clock.advance(timedelta(seconds=5))
    with pytest.raises(NoUpdateSourceError) as second:
        Agent(device, clock=clock).update()
    backoff = load_state(device).server_backoff
    assert backoff is not None
    assert f"Server {server.url}: not asked until {backoff.not_before}" in second.value.message
    assert load_state(device).running.build == "1.0"

    # Once the wait is over it asks, and updates (the server recovered by itself; a
    # pool connection still dead from the cut may cost one more wait).
    for _ in range(5):
        clock.set(not_before(device))
        try:
            result = Agent(device, clock=clock).update()
        except NoUpdateSourceError:
            continue
        break
    else:
        pytest.fail("the device never updated after the database came back")
    assert result.build == "1.1"
    assert load_state(device).server_backoff is None


@pytest.mark.postgres
@pytest.mark.long
def test_a_fleet_of_agents_through_an_outage_backs_off_with_jitter_and_all_update(
    proxied_server: tuple[RunningServer, TcpProxy],
    make_device: Callable[..., DeviceDir],
) -> None:
    server, proxy = proxied_server
    assert server.api().post("/api/policies", json=ALLOW_ALL).status_code == 201
    publish_via_repo(server)
    devices = [agent_device(make_device, server, f"SN-FLEET{i}") for i in range(8)]
    clock = SystemClock()
    for device in devices:  # a fleet that has been polling: every device checked in once
        assert check_in(server, device.load_config().credential).status_code == 200

    proxy.cut()
    told: list[tuple[datetime, datetime]] = []  # (asked at, not before)
    for device in devices:
        # The check-in is answered from the server's cache (the offer of 1.1 stands) and
        # the image comes from its repository; the reports get 503: the device waits.
        asked_at = clock.now()
        with contextlib.suppress(NoUpdateSourceError):
            Agent(device, clock=clock).update()
        told.append((asked_at, not_before(device)))
    # Every device waits at least the server's Retry-After (10 s), at most twice it,
    # and the fleet does not come back at one instant.
    for asked_at, until in told:
        assert asked_at + timedelta(seconds=10) <= until <= asked_at + timedelta(seconds=21)
    assert len({until for _, until in told}) >= len(devices) // 2
    time.sleep(3)
    proxy.open()

    # Each agent runs as a timer would start it; it asks the server only once its wait
    # is over, and every report arrives without anyone stepping in.
    asked_again: dict[int, datetime] = {}
    deadline = time.monotonic() + 120
    while len(asked_again) < len(devices):
        assert time.monotonic() < deadline, f"only {len(asked_again)} devices got through"
        for index, device in enumerate(devices):
            if index in asked_again or clock.now() < not_before(device):
                continue
            asked_at = clock.now()
            with contextlib.suppress(NoUpdateSourceError):
                Agent(device, clock=clock).update()
            if load_state(device).server_backoff is None:
                asked_again[index] = asked_at
            else:
                assert not_before(device) >= asked_at + timedelta(seconds=10)
        time.sleep(0.2)
    for index, (_, until) in enumerate(told):
        assert asked_again[index] >= until
    assert len({at.replace(microsecond=0) for at in asked_again.values()}) >= len(devices) // 2
    for device in devices:
        state = load_state(device)
        assert state.running.build == "1.1"
        assert not list(device.outbox.glob("*.json")), "a report was not delivered"
    assert server.api().get("/api/audit/verify").json()["ok"] is True


def a_report() -> tuple[str, bytes]:
    report = Report(
        report_id=str(uuid.uuid4()),
        target="alpha/1.0/alpha-1.0.img",
        build="1.0",
        status=ReportStatus.DOWNLOADING,
        at=datetime.now(UTC).isoformat(),
    )
    return report.report_id, msgspec.json.encode(ReportBatch(reports=[report]))


@pytest.mark.postgres
@pytest.mark.long
def test_with_the_database_away_devices_get_503_with_retry_after_and_it_recovers_by_itself(
    repo: Repository,
    proxied_postgres: tuple[str, TcpProxy],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, proxy = proxied_postgres
    create_director(repo)
    publish(repo, "alpha", "1.0")
    home = repo.layout.home
    process = start_server(home, url)
    try:
        token = make_token(home, url, "admin", "admin", capsys)
        server = RunningServer(
            f"http://127.0.0.1:{process.port}",  # type: ignore[attr-defined]
            home,
            url,
            process,
            token,
        )
        assert server.api().post("/api/policies", json=ALLOW_ALL).status_code == 201
        credentials = [enroll(server, f"SN-DB{i}")[1] for i in range(3)]
        for credential in credentials:
            assert check_in(server, credential).status_code == 200
        stored: set[str] = set()
        kept: list[tuple[str, str, bytes]] = []  # (credential, report id, body) to send again

        proxy.cut()
        statuses: list[int] = []
        for credential in [*credentials, f"{uuid.uuid4().hex}.not-cached"] * 3:
            report_id, body = a_report()
            with server.client(credential) as client:
                answer = client.post("/v1/reports", content=body)
            statuses.append(answer.status_code)
            if answer.status_code == 200:
                stored.add(report_id)
            elif answer.status_code == 503:
                assert int(answer.headers["Retry-After"]) > 0
                if not credential.endswith("not-cached"):
                    kept.append((credential, report_id, body))
        assert 503 in statuses
        assert set(statuses) <= {200, 503}, statuses
        assert process.poll() is None

        proxy.open()
        deadline = time.monotonic() + 60
        while kept:
            assert time.monotonic() < deadline, "the server did not recover by itself"
            credential, report_id, body = kept[0]
            with server.client(credential) as client:
                answer = client.post("/v1/reports", content=body)
            if answer.status_code == 200:
                stored.add(report_id)
                kept.pop(0)
            else:
                assert answer.status_code == 503, answer.text
                time.sleep(0.5)
        for credential in credentials:
            assert check_in(server, credential).status_code == 200
        db = Database.connect(url)
        with db.transaction() as session:
            in_database = set(session.scalars(select(InstallReport.report_id)))
        db.dispose()
        assert stored == in_database
        assert server.api().get("/api/audit/verify").json()["ok"] is True
    finally:
        stop_server(process)


#: Management API reads and writes tried while the database is away.
MANAGEMENT_CALLS = [
    ("GET", "/api/devices"),
    ("GET", "/api/releases"),
    ("GET", "/api/policies"),
    ("GET", "/api/rollouts"),
    ("GET", "/api/tokens"),
    ("GET", "/api/audit/verify"),
    ("POST", "/api/policies"),
]


@pytest.mark.postgres
def test_with_the_database_away_the_management_api_answers_503_and_recovers_by_itself(
    proxied_server: tuple[RunningServer, TcpProxy],
) -> None:
    server, proxy = proxied_server
    with server.api() as api:
        before = api.get("/api/policies").json()

    proxy.cut()
    with server.api() as api:
        for method, path in MANAGEMENT_CALLS:
            answer = api.request(method, path, json=ALLOW_ALL if method == "POST" else None)
            assert answer.status_code == 503, (method, path, answer.text)
            assert int(answer.headers["Retry-After"]) > 0
            assert "the database is unavailable" in answer.json()["detail"]
    assert server.process.poll() is None

    proxy.open()
    deadline = time.monotonic() + 30
    with server.api() as api:
        while (answer := api.get("/api/policies")).status_code != 200:
            assert answer.status_code == 503, answer.text
            assert time.monotonic() < deadline, "the management API did not recover by itself"
            time.sleep(0.2)
        assert answer.json() == before  # the refused POST changed nothing
        for method, path in MANAGEMENT_CALLS:
            if method == "GET":
                assert api.get(path).status_code == 200, path


@pytest.mark.postgres
def test_devices_first_seen_during_an_outage_get_503_then_are_served_and_it_is_logged_once(
    proxied_server: tuple[RunningServer, TcpProxy],
) -> None:
    """Devices the process has never loaded ask while the database is away: each gets
    503 with Retry-After, the log says so without a traceback per request, and once the
    database is back the same process serves them all."""
    server, proxy = proxied_server
    assert server.api().post("/api/policies", json=ALLOW_ALL).status_code == 201
    publish_via_repo(server)
    credentials = [enroll(server, f"SN-FIRST{i}")[1] for i in range(8)]
    # Enrolment may leave a device in this process's cache: ask a process that has seen
    # none of them.
    stop_server(server.process)
    fresh = start_server(server.home, server.database_url, port=_port(server))
    try:
        proxy.cut()
        for credential in credentials:
            refused = check_in(server, credential)
            assert refused.status_code == 503, refused.text
            assert int(refused.headers["retry-after"]) >= 1
        proxy.open()
        deadline = time.monotonic() + 60
        served = 0
        while served < len(credentials):
            assert time.monotonic() < deadline, f"{served} of {len(credentials)} served"
            answer = check_in(server, credentials[served])
            if answer.status_code == 503:  # a pool connection still dead from the cut
                time.sleep(0.5)
                continue
            assert answer.status_code == 200, answer.text
            served += 1
    finally:
        stop_server(fresh)
    log = (server.home / "server.log").read_text()
    assert log.count("Traceback") <= 3, log[-4000:]
    assert log.count("could not load device") <= 3, log[-4000:]


def _port(server: RunningServer) -> int:
    return int(server.url.rsplit(":", 1)[1])
