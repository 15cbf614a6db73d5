"""Servers tuned to retry webhooks quickly, and their tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from patchline.director.identity import create_director
from patchline.repository import Repository
from tests.server.conftest import RunningServer, make_token, start_server, stop_server

FAST_RETRIES = {
    "PATCHLINE_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
    "PATCHLINE_WEBHOOK_RETRY_MAX_SECONDS": "0.5",
    "PATCHLINE_WEBHOOK_TIMEOUT_SECONDS": "2",
    "PATCHLINE_WEBHOOK_MAX_ATTEMPTS": "100",
    "PATCHLINE_TWO_PERSON_ACTIONS": "rule.create,rule.amend",
}


@pytest.fixture
def server_env() -> dict[str, str]:
    """What the server of a test runs with, besides the usual settings."""
    return dict(FAST_RETRIES)


@pytest.fixture
def served(
    repo: Repository,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    server_env: dict[str, str],
) -> Iterator[RunningServer]:
    """A server with fast webhook retries and the two-person rule on rule changes."""
    create_director(repo)
    home: Path = repo.layout.home
    process = start_server(home, database_url, env=server_env)
    token = make_token(home, database_url, "admin", "admin", capsys)
    running = RunningServer(
        f"http://127.0.0.1:{process.port}",  # type: ignore[attr-defined]
        home,
        database_url,
        process,
        token,
    )
    yield running
    stop_server(running.process)
