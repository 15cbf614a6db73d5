"""Two server processes on one PostgreSQL, the fleet's calls spread over both, both
evaluating the brakes every second: a build failing on a fifth of devices is halted once,
with one halt entry in an audit chain that verifies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select, text

from patchline.audit import verify
from patchline.settings import Settings
from patchline.simulate import Simulation, SimulationOptions
from patchline.simulate.world import SIM_PASSPHRASE, SimWorld
from patchline.store.db import Base, Database
from patchline.store.models import AuditEntry
from tests.server.conftest import start_server, stop_server
from tests.simulate.test_rollouts import failures, installed, rollout_body

pytestmark = pytest.mark.long  # minutes: `make test-long`


@pytest.fixture
def url(postgres_server_url: str) -> str:
    """The session's PostgreSQL database, emptied."""
    db = Database.connect(postgres_server_url)
    with db.engine.begin() as conn:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.dispose()
    return postgres_server_url


def test_two_processes_halt_a_bad_build_exactly_once(tmp_path: Path, url: str) -> None:
    options = SimulationOptions(
        devices=800, days=2, seed=5, concurrency=32, failures=failures(boot_failure=0.2)
    )
    world = SimWorld.create(tmp_path / "sim", options.start_instant, Settings(kdf_log2n=10), url)
    second = start_server(
        tmp_path / "sim" / "home",
        url,
        env={
            "PATCHLINE_PASSPHRASE": SIM_PASSPHRASE,
            "PATCHLINE_ENROLLMENT_TOKEN": world.enrollment_token,
            "PATCHLINE_SIMULATED_CLOCK_FILE": str(world.clock_file.absolute()),
        },
    )
    world.also = [f"http://127.0.0.1:{second.port}"]  # type: ignore[attr-defined]
    try:
        world.api("POST", "/api/rollouts", rollout_body([(10, 48), (50, 24), (100, 24)]))
        simulation = Simulation(world, options, lambda _line: None)
        simulation.run()
        shown = world.api("GET", "/api/rollouts/R-1")
        cohort = set(world.api("GET", "/api/rollouts/R-1/cohort?phase=1")["device_ids"])
    finally:
        world.close()
        stop_server(second)
    assert shown["state"] == "halted"
    assert [e["to_state"] for e in shown["history"]] == ["active", "halted"]
    aurora = [d for d in simulation.devices if d.model == "aurora"]
    assert installed(aurora)
    assert set(installed(aurora)) <= cohort

    db = Database.connect(url)
    try:
        with db.transaction() as session:
            rows = session.scalars(select(AuditEntry).where(AuditEntry.kind == "rollout"))
            halts = [json.loads(r.payload) for r in rows]
        assert [(h["from"], h["to"]) for h in halts] == [(None, "active"), ("active", "halted")]
        assert halts[1]["figures"]["rolled_back"] > 0
        assert verify(db).ok
    finally:
        db.dispose()
