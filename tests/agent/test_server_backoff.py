"""A server that answers 503 (or a server error) makes the agent wait before asking it
again: the wait is saved in state.json, later runs before it skip the server (saying
so, and until when) and still try the bundles and mirrors in order; the reports made
meanwhile stay queued."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from patchline.agent import Agent, DeviceDir
from patchline.agent.state import load_state
from patchline.clock import FixedClock
from patchline.errors import NoUpdateSourceError
from patchline.repository import Repository
from tests.agent.conftest import closed_port_url
from tests.agent.hosts import BusyServer, RangeHost
from tests.conftest import publish


@pytest.fixture
def busy_server() -> Iterator[BusyServer]:
    server = BusyServer()
    yield server
    server.http.shutdown()
    server.http.server_close()


def not_before(device: DeviceDir) -> datetime:
    backoff = load_state(device).server_backoff
    assert backoff is not None
    return datetime.fromisoformat(backoff.not_before)


def test_a_503_makes_later_runs_skip_the_server_until_the_jittered_wait_is_over(
    repo: Repository,
    make_device: Callable[..., DeviceDir],
    hosts: Callable[..., RangeHost],
    busy_server: BusyServer,
) -> None:
    publish(repo, "alpha", "2.0")
    mirror = hosts(repo.layout.public_dir)
    device = make_device(server_url=busy_server.url, credential="dev.secret", mirrors=[mirror.url])
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    start = clock.now()

    first = Agent(device, clock=clock, rng=random.Random(5)).update()

    # The server was asked once (no reports sent after its 503); the mirror delivered.
    assert busy_server.calls == ["/v1/check-in"]
    assert first.status == "installed"
    assert first.build == "2.0"
    wait_until = not_before(device)
    assert start + timedelta(seconds=10) <= wait_until <= start + timedelta(seconds=21)
    backoff = load_state(device).server_backoff
    assert backoff is not None
    assert backoff.failures == 1
    assert "HTTP 503" in backoff.reason

    clock.advance(timedelta(seconds=9))
    second = Agent(device, clock=clock).update()

    assert busy_server.calls == ["/v1/check-in"]
    assert second.status == "up-to-date"
    assert f"Server {busy_server.url}: not asked until {backoff.not_before}" in second.message
    assert f"checked Mirror {mirror.url}" in second.message

    clock.set(wait_until)
    busy_server.retry_after = None  # now a bare 500: the exponential backoff
    Agent(device, clock=clock, rng=random.Random(6)).update()

    assert busy_server.calls == ["/v1/check-in", "/v1/check-in"]
    backoff = load_state(device).server_backoff
    assert backoff is not None
    assert backoff.failures == 2
    assert "HTTP 500" in backoff.reason
    assert wait_until + timedelta(seconds=60) <= not_before(device)
    assert not_before(device) <= wait_until + timedelta(seconds=121)
    # Every report of the install is still queued: nothing was sent while told to wait.
    assert len(list(device.outbox.glob("*.json"))) >= 3


def test_with_no_other_source_the_error_says_when_the_server_is_asked_again(
    make_device: Callable[..., DeviceDir], busy_server: BusyServer
) -> None:
    device = make_device(
        server_url=busy_server.url,
        server_repository_url=closed_port_url(),
        credential="dev.secret",
    )
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    with pytest.raises(NoUpdateSourceError, match="HTTP 503"):
        Agent(device, clock=clock).update()
    when = load_state(device).server_backoff
    assert when is not None

    with pytest.raises(NoUpdateSourceError) as caught:
        Agent(device, clock=clock).update()

    assert busy_server.calls == ["/v1/check-in"]
    message = caught.value.message
    assert f"Server {busy_server.url}: not asked until {when.not_before}" in message
    # The server's repository is skipped too, and says so.
    assert message.count(f"not asked until {when.not_before}") == 2
    assert "The device keeps running build 1.0" in message


def test_a_fleet_of_agents_told_to_wait_spreads_its_next_questions(
    make_device: Callable[..., DeviceDir], busy_server: BusyServer
) -> None:
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    instants = []
    for index in range(12):
        device = make_device(f"dev{index}", server_url=busy_server.url, credential="d.s")
        with pytest.raises(NoUpdateSourceError):
            Agent(device, clock=clock).update()
        instants.append(not_before(device))
    assert all(i >= clock.now() + timedelta(seconds=10) for i in instants)
    assert len(set(instants)) > 4
