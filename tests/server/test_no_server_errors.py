"""Property-based requests against the management API's OpenAPI: never a 500."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from patchline.server.auth import Role, create_token
from patchline.store.db import Database
from tests.server.conftest import RunningServer
from tests.server.test_device_flow import ALLOW_ALL, enroll, publish_via_repo


def _token(server: RunningServer, name: str) -> str:
    db = Database.connect(server.database_url)
    try:
        with db.transaction() as session:
            return create_token(session, name, Role.ADMIN, datetime.now(UTC))
    finally:
        db.dispose()


def test_generated_requests_never_get_a_server_error(server: RunningServer) -> None:
    server.api().post("/api/policies", json=ALLOW_ALL)
    publish_via_repo(server)
    enroll(server, "SN-FUZZ")
    # The generated requests may revoke any token whose name they guess (the admin's
    # too): the chain is verified afterwards with a token made after them.
    fuzz_token = _token(server, "fuzz")
    exe = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(exe), "run", f"{server.url}/openapi.json",
            "-H", f"Authorization: Bearer {fuzz_token}",
            "--checks", "not_a_server_error",
            "--max-examples", "15",
            "--seed", "20261125",
            "--no-color",
        ],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in result.stdout
    # The generated requests without a token count as failed sign-ins of this address,
    # which is refused with 429 for a while: wait it out, as a client would.
    auditor = server.client(_token(server, "auditor"))
    verified = auditor.get("/api/audit/verify")
    deadline = time.monotonic() + 120
    while verified.status_code == 429 and time.monotonic() < deadline:
        time.sleep(max(1, int(verified.headers["retry-after"])))
        verified = auditor.get("/api/audit/verify")
    assert verified.status_code == 200, verified.text
    assert verified.json()["ok"] is True
