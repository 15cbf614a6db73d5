"""``patchline simulate --server``: a server started on its own, told to read the
simulation's clock file, and the command driving a fleet through it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from patchline.cli.main import main
from patchline.clock import write_clock_file
from patchline.director.identity import create_director
from patchline.repository import Repository
from tests.conftest import publish
from tests.server.conftest import ENROLLMENT_TOKEN, make_token, start_server, stop_server

START = datetime(2026, 3, 2, tzinfo=UTC)


def test_a_fleet_runs_through_a_server_started_on_the_clock_file(
    repo: Repository, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(repo, "alpha", "1.0", "2026-01-01")
    publish(repo, "alpha", "1.1", "2026-02-01")
    publish(repo, "beta", "2.0", "2026-01-01")
    create_director(repo)
    home = repo.layout.home
    database_url = f"sqlite:///{tmp_path / 'server.db'}"
    clock = tmp_path / "clock"
    write_clock_file(clock, START)
    process = start_server(home, database_url, env={"PATCHLINE_SIMULATED_CLOCK_FILE": str(clock)})
    try:
        url = f"http://127.0.0.1:{process.port}"  # type: ignore[attr-defined]
        token = make_token(home, database_url, "admin", "admin", capsys)
        rule = {"id": "all", "title": "All", "effect": "allow", "priority": 1}
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.post(f"{url}/api/policies", json=rule, headers=headers).status_code == 201
        argv = ["simulate", "--server", url, "--clock-file", str(clock)]
        argv += ["--enrollment-token", ENROLLMENT_TOKEN, "--api-token", token]
        argv += ["--devices", "40", "--days", "2", "--report", str(tmp_path / "run.json")]
        assert main(argv) == 0
        report = json.loads((tmp_path / "run.json").read_text())
        devices = httpx.get(f"{url}/api/devices?page_size=100", headers=headers).json()
    finally:
        stop_server(process)
    assert "the server agrees on every device" in capsys.readouterr().out
    states = report["install_states"]
    assert states["server"] == states["simulator"]
    assert sum(d["installs"] for d in report["days"]) > 0  # alpha 1.0 devices took 1.1
    # The server's last-seen times are on the simulation's two days.
    assert {d["last_seen_at"][:10] for d in devices["devices"]} <= {"2026-03-02", "2026-03-03"}


def test_a_remote_run_without_the_clock_file_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["simulate", "--server", "http://127.0.0.1:9", "--devices", "1"]) == 2
    assert "--server needs --clock-file" in capsys.readouterr().err
