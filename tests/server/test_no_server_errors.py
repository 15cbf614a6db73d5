"""Property-based requests against the management API's OpenAPI (schemathesis, every
check): never a 500, and every answer the one the OpenAPI documents."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from patchline.director.identity import create_director
from patchline.repository import Repository
from patchline.server.auth import Role, create_token
from patchline.store.db import Database
from tests.server.conftest import RunningServer, make_token, start_server, stop_server
from tests.server.test_device_flow import ALLOW_ALL, enroll, publish_via_repo


def _token(server: RunningServer, name: str) -> str:
    db = Database.connect(server.database_url)
    try:
        with db.transaction() as session:
            return create_token(session, name, Role.ADMIN, datetime.now(UTC))
    finally:
        db.dispose()


# Generated requests without a token are failed sign-ins of this address: with the
# limits the server ships with, most generated requests would get 429 and test nothing.
UNLIMITED = {
    "PATCHLINE_API_FAILED_SIGNINS_PER_MINUTE": "1000000",
    "PATCHLINE_API_REQUESTS_PER_MINUTE_PER_TOKEN": "1000000",
    "PATCHLINE_API_REQUESTS_PER_MINUTE_PER_ADDRESS": "1000000",
}


@pytest.fixture
def server(
    repo: Repository, database_url: str, capsys: pytest.CaptureFixture[str]
) -> Iterator[RunningServer]:
    """A server whose request limits are out of the generated requests' way."""
    create_director(repo)
    home = repo.layout.home
    process = start_server(home, database_url, env=UNLIMITED)
    token = make_token(home, database_url, "admin", "admin", capsys)
    url = f"http://127.0.0.1:{process.port}"  # type: ignore[attr-defined]
    yield RunningServer(url, home, database_url, process, token)
    stop_server(process)


def _schemathesis(server: RunningServer, token: str, *selection: str) -> str:
    """Run schemathesis over the server's OpenAPI with every check it has; its report."""
    exe = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(exe), "run", f"{server.url}/openapi.json",
            "-H", f"Authorization: Bearer {token}",
            # Every check but one: a request the schema allows may still be refused with
            # 422 for what a schema cannot say (a phase plan not ending at 100 %, a NUL
            # character in text, facts that change nothing).
            "--checks", "all", "--exclude-checks", "positive_data_acceptance",
            "--max-examples", "15",
            "--seed", "20261125",
            "--no-color",
            *selection,
        ],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:]
    assert " passed" in result.stdout
    return result.stdout


def test_generated_requests_get_documented_answers_and_never_a_server_error(
    server: RunningServer,
) -> None:
    """Every operation, with generated valid and invalid requests, with and without a
    token, and in generated sequences: never a 5xx, only documented statuses, content
    types and headers, bodies that match the documented schemas, invalid input refused,
    405 with a true ``Allow`` for a method the path does not take."""
    server.api().post("/api/policies", json=ALLOW_ALL)
    publish_via_repo(server)
    enroll(server, "SN-FUZZ")
    revoke = "/api/tokens/{name}/revoke"
    report = _schemathesis(server, _token(server, "fuzz"), "--exclude-path", revoke)
    assert "Authentication failed" not in report, report[-3000:]
    # Revoking is tried last, with a token of its own: it may revoke any token whose name
    # it guesses (its own too), which would leave the rest untested.
    _schemathesis(server, _token(server, "fuzz-revoke"), "--include-path", revoke)
    auditor = server.client(_token(server, "auditor"))
    verified = auditor.get("/api/audit/verify")
    assert verified.status_code == 200, verified.text
    assert verified.json()["ok"] is True
