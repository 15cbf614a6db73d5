"""One real server per test module with a small fleet in it: two models, devices in three
regions on several patch levels, a rollout, install reports, a support promise, and a
token for each role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from patchline.clock import FixedClock, SystemClock
from patchline.director.identity import create_director
from patchline.fleet.support import set_promise
from patchline.repository import RepositoryConfig, add_model, init_repository
from patchline.repository.passphrases import PassphraseSource
from patchline.server.auth import Role, create_token
from patchline.settings import Settings
from patchline.store.db import Database
from patchline.wire.device_api import ReportStatus
from tests.conftest import PASSPHRASE, publish
from tests.server.conftest import RunningServer, start_server, stop_server
from tests.server.test_device_flow import ALLOW_ALL, check_in, enroll, report

#: Where the browser tests keep their screenshots (gitignored).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


@dataclass
class Fleet:
    """The running server, a token per role, and ids of what is in it."""

    server: RunningServer
    tokens: dict[str, str]
    devices: list[str]
    rollout: str


def _tokens(database_url: str) -> dict[str, str]:
    db = Database.connect(database_url)
    try:
        with db.transaction() as session:
            now = SystemClock().now()
            return {role.value: create_token(session, role.value, role, now) for role in Role}
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """A server (SQLite) with releases, a rule, 24 devices, a rollout and reports."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PATCHLINE_KEY_KDF_LOG2N", "10")
        env.setenv("PATCHLINE_PASSPHRASE", PASSPHRASE)
        env.delenv("PATCHLINE_HOME", raising=False)
        base = tmp_path_factory.mktemp("console")
        home = base / "repo"
        clock = FixedClock(SystemClock().now())
        repo = init_repository(
            home,
            RepositoryConfig(keys_dir=home / "keys"),
            settings=Settings(kdf_log2n=10),
            passphrases=PassphraseSource({"PATCHLINE_PASSPHRASE": PASSPHRASE}, interactive=False),
            clock=clock,
        )
        add_model(repo, "alpha")
        add_model(repo, "beta")
        publish(repo, "alpha", "1.0")
        publish(repo, "alpha", "1.1", "2026-02-01")
        publish(repo, "beta", "1.0")
        create_director(repo)
        database_url = f"sqlite:///{base / 'server.db'}"
        # Starting and widening a rollout need a second person: the console's approve
        # button is tested, and a rollout started from its form waits for approval.
        process = start_server(
            home,
            database_url,
            env={"PATCHLINE_TWO_PERSON_ACTIONS": "rollout.start,rollout.widen"},
        )
        tokens = _tokens(database_url)
        server = RunningServer(
            f"http://127.0.0.1:{process.port}",  # type: ignore[attr-defined]
            home,
            database_url,
            process,
            tokens["admin"],
        )
        try:
            yield _populate(server, tokens, database_url)
        finally:
            stop_server(process)


def _populate(server: RunningServer, tokens: dict[str, str], database_url: str) -> Fleet:
    api = server.api()
    assert api.post("/api/releases/sync").status_code == 200
    assert api.post("/api/policies", json=ALLOW_ALL).status_code == 201
    today = SystemClock().now().date()
    licence = {
        "id": "licence-L1",
        "title": "Security licence",
        "effect": "allow",
        "priority": 200,
        "update_classes": ["security"],
        "valid_from": (today - timedelta(days=30)).isoformat(),
        "valid_until": (today + timedelta(days=30)).isoformat(),
    }
    assert api.post("/api/policies", json=licence).status_code == 201
    shortened = {
        "effective_from": (today + timedelta(days=1)).isoformat(),
        "changes": {"valid_until": (today + timedelta(days=10)).isoformat()},
        "note": "narrowed by the regulator",
    }
    amended = api.post("/api/policies/licence-L1/amendments", json=shortened)
    assert amended.status_code == 201, amended.text
    proposed = api.post(
        "/api/rollouts",
        json={"model": "alpha", "build": "1.1", "phases": [{"percent": 100, "soak_hours": 100}]},
    )
    assert proposed.status_code == 202, proposed.text
    second = server.client(tokens["release-manager"])
    approved = second.post(f"/api/proposals/{proposed.json()['id']}/approve")
    assert approved.status_code == 200, approved.text
    [created] = api.get("/api/rollouts").json()
    devices = []
    regions = ("DE", "FR", "US")
    levels = ("2025-06-01", "2025-11-01", "2026-01-01")
    for i in range(24):
        model = "alpha" if i < 18 else "beta"
        device_id, credential = enroll(
            server,
            f"SN{i:03d}",
            model=model,
            region=regions[i % 3],
            security_patch_level=levels[i % 3],
        )
        devices.append(device_id)
        if model == "alpha":
            assert check_in(server, credential, spl=levels[i % 3]).status_code == 200
            report(server, credential, ReportStatus.INSTALLED)
            outcome = ReportStatus.FAILED if i % 6 == 0 else ReportStatus.BOOTED_HEALTHY
            report(server, credential, outcome)
    db = Database.connect(database_url)
    try:
        with db.transaction() as session:
            now = SystemClock().now()
            set_promise(session, "beta", date(2025, 1, 1), "two years after launch", "test", now)
    finally:
        db.dispose()
    return Fleet(server, tokens, devices, created["id"])
