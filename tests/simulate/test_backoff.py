"""Simulated devices follow the agent's rule after a busy server: each asks again after
the server's Retry-After times its own jitter, so a fleet told 503 at one instant does
not come back at one instant."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from patchline.simulate.catalog import Build, Catalog
from patchline.simulate.device import Fetch, Lane, Services, SimDevice
from patchline.simulate.failures import DEFAULT_FAILURES
from patchline.simulate.report import DayTally
from patchline.transport.device_api_async import AsyncDeviceApiClient
from tests.agent.hosts import BusyServer


@pytest.fixture
def busy_server() -> Iterator[BusyServer]:
    server = BusyServer()
    yield server
    server.http.shutdown()
    server.http.server_close()


def fleet(size: int) -> list[SimDevice]:
    build = Build("alpha", "1.0", "0" * 64, "2026-01-01")
    return [
        SimDevice(
            index=i,
            rng=random.Random(f"backoff:{i}"),
            model="alpha",
            region="DE",
            deployed_on=date(2025, 1, 1),
            running=build,
            credential="dev.secret",
        )
        for i in range(size)
    ]


async def turns(devices: list[SimDevice], now: datetime, url: str, tally: DayTally) -> None:
    services = Services(
        catalog=Catalog(builds={}, targets={}, factory={}),
        failures=DEFAULT_FAILURES,
        fetch=Fetch.NONE,
        poll_interval=timedelta(hours=6),
        jitter=0.25,
    )
    async with httpx.AsyncClient(timeout=5) as http:
        lane = Lane(AsyncDeviceApiClient(http, url), http)
        for device in devices:
            await device.turn(now, services, lane, tally)


def test_a_fleet_told_503_spreads_its_next_turns_over_the_jittered_window(
    busy_server: BusyServer,
) -> None:
    devices = fleet(1000)
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    tally = DayTally(now.date())

    asyncio.run(turns(devices, now, busy_server.url, tally))

    assert tally.told_to_wait == tally.errors == 1000
    waits = [(d.next_turn - now).total_seconds() for d in devices]
    assert all(10 <= w < 20 for w in waits)
    assert len({round(w, 3) for w in waits}) > 900
    assert {int(w) for w in waits} == set(range(10, 20))

    busy_server.retry_after = None  # a bare 500 next: 30 s doubled per error in a row
    later = now + timedelta(seconds=20)
    asyncio.run(turns(devices, later, busy_server.url, tally))

    waits = [(d.next_turn - later).total_seconds() for d in devices]
    assert all(d.server_failures == 2 for d in devices)
    assert all(60 <= w < 120 for w in waits)
