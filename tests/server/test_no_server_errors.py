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


def test_generated_requests_never_get_a_server_error(server: RunningServer) -> None:
    server.api().post("/api/policies", json=ALLOW_ALL)
    publish_via_repo(server)
    enroll(server, "SN-FUZZ")
    # The generated requests may revoke the token they carry: they get one of their own,
    # and the chain is verified afterwards with the server's admin token.
    db = Database.connect(server.database_url)
    with db.transaction() as session:
        fuzz_token = create_token(session, "fuzz", Role.ADMIN, datetime.now(UTC))
    db.dispose()
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
    verified = server.api().get("/api/audit/verify")
    if verified.status_code == 429:  # the generated requests without a token count as
        time.sleep(int(verified.headers["retry-after"]))  # failed sign-ins of this address
        verified = server.api().get("/api/audit/verify")
    assert verified.json()["ok"] is True
