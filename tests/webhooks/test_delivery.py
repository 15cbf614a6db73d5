"""Signed webhooks from real server processes, on SQLite and PostgreSQL, to a receiver on
127.0.0.1 that checks every signature: at least once through an outage, through the server
being killed mid-delivery, and re-sent by hand once given up."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from patchline.webhooks.signing import new_secret
from tests.server.conftest import RunningServer, free_port, make_token, start_server
from tests.webhooks.conftest import FAST_RETRIES
from tests.webhooks.flows import (
    create_rule_with_approval,
    install_results,
    outbox,
    subscribe,
)
from tests.webhooks.receiver import Receiver


def descendants(pid: int) -> list[int]:
    """Every process started by ``pid`` (the ASGI server's workers), from /proc."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *descendants(int(child))]
    return found


def kill_with_its_workers(pid: int) -> None:
    """SIGKILL the server and every worker process it runs: none may finish a delivery."""
    for each in [pid, *descendants(pid)]:
        os.kill(each, signal.SIGKILL)


EVENTS = [
    "rule.created",
    "proposal.created",
    "proposal.approved",
    "install.booted-healthy",
    "install.rolled-back",
    "install.failed",
]


def test_a_receiver_down_then_failing_gets_every_event_exactly_as_emitted(
    served: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = new_secret()
    receiver = Receiver(free_port(), secret)  # not listening yet: connections are refused
    subscribe(served, receiver.url, EVENTS, secret)
    bob = make_token(served.home, served.database_url, "bob", "compliance", capsys)
    try:
        for n in range(3):
            create_rule_with_approval(served, bob, f"r{n}")
        install_results(served, "SN-1")
        time.sleep(1.5)  # refused
        receiver.status = 503
        receiver.start()
        time.sleep(1.5)  # answered 503
        receiver.status = 200
        receiver.wait_for(12)
        time.sleep(0.5)
        emitted = outbox(served)
        assert len(emitted) == 12
        assert {m.message_id: m.body for m in emitted} == receiver.received.bodies
        assert all(m.state == "delivered" for m in emitted), [m.last_error for m in emitted]
        assert max(m.attempts for m in emitted) > 2
        assert receiver.received.answered_503 > 0
        assert receiver.received.bad_signatures == 0
        kinds = sorted(e["type"] for e in receiver.received.events())
        assert kinds == sorted(
            3 * ["rule.created", "proposal.created", "proposal.approved"]
            + ["install.failed", "install.rolled-back", "install.booted-healthy"]
        )
        created = [e for e in receiver.received.events() if e["type"] == "rule.created"]
        assert sorted(e["data"]["rule"]["id"] for e in created) == ["r0", "r1", "r2"]
        assert {e["data"]["approval"]["proposed_by"] for e in created} == {"token:admin"}
        assert {e["data"]["approval"]["approved_by"] for e in created} == {"token:bob"}
    finally:
        receiver.stop()


def test_a_server_killed_mid_delivery_loses_no_event(
    served: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = new_secret()
    receiver = Receiver(free_port(), secret)
    receiver.hold = 1.0  # every answer takes a second: the kill lands mid-request
    receiver.start()
    subscribe(served, receiver.url, ["rule.created"], secret)
    bob = make_token(served.home, served.database_url, "bob", "compliance", capsys)
    try:
        for n in range(4):
            create_rule_with_approval(served, bob, f"k{n}")
        deadline = time.monotonic() + 30
        while receiver.received.deliveries == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        kill_with_its_workers(served.process.pid)
        served.process.wait(timeout=10)
        assert len(receiver.received.bodies) < 4
        served.process = start_server(served.home, served.database_url, env=FAST_RETRIES)
        receiver.wait_for(4, timeout=90)
        emitted = outbox(served)
        assert {m.message_id: m.body for m in emitted} == receiver.received.bodies
        assert sorted(
            json.loads(b)["data"]["rule"]["id"] for b in receiver.received.bodies.values()
        ) == [
            "k0",
            "k1",
            "k2",
            "k3",
        ]
        assert receiver.received.bad_signatures == 0
    finally:
        receiver.stop()
