"""The README's rule example, typed as written against a real server: default deny, then
the smallest allow rule posted with the README's own curl command."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from patchline.clock import FixedClock, SystemClock
from patchline.wire.release import UpdateClass
from tests.conftest import open_repo, publish
from tests.server.conftest import RunningServer
from tests.server.test_device_flow import enroll

README = Path(__file__).parents[2] / "README.md"


def _readme() -> str:
    return README.read_text()


def _curl_posting_the_rule(readme: str) -> str:
    """The README's shell command that posts rule.json, continuation lines joined."""
    joined = readme.replace("\\\n", " ")
    [command] = [line for line in joined.splitlines() if "/api/policies" in line]
    return command.split("  #")[0].strip()


def _rule_example(readme: str) -> dict[str, Any]:
    """The JSON rule the README gives after saying that no rule means no update."""
    at = readme.index("**With no rule in force, no update is offered**")
    block = re.search(r"```json\n(.*?)\n```", readme[at:], re.DOTALL)
    assert block, "the README gives no rule example after the default-deny paragraph"
    rule: dict[str, Any] = json.loads(block.group(1))
    return rule


def _explained(server: RunningServer, device_id: str) -> dict[str, Any]:
    response = server.api().get(f"/api/devices/{device_id}/explain")
    assert response.status_code == 200, response.text
    decision: dict[str, Any] = response.json()["decision"]
    return decision


@pytest.mark.skipif(shutil.which("curl") is None, reason="the README's example uses curl")
def test_the_readme_rule_example_works_as_written(server: RunningServer, tmp_path: Path) -> None:
    readme = _readme()
    repo = open_repo(server.home, FixedClock(SystemClock().now()))
    publish(repo, "alpha", "1.1", "2026-02-01", UpdateClass.SECURITY)
    assert server.api().post("/api/releases/sync").status_code == 200
    device_id, _ = enroll(server, "SN1")

    # No rule in force: nothing is offered, and explain says why in the README's words.
    said = re.search(r"says of each newer build `([^`]*)`", readme, re.DOTALL)
    assert said, "the README does not quote what explain says under default deny"
    before = _explained(server, device_id)
    assert before["action"] == "none"
    assert " ".join(said.group(1).split()) in before["reasons"]

    # The README's curl command, run as written, with its rule.json.
    (tmp_path / "rule.json").write_text(json.dumps(_rule_example(readme)))
    command = _curl_posting_the_rule(readme).replace("localhost:8000", server.url)
    assert command.startswith("curl ")
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "TOKEN": server.admin_token},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created.get("id") == _rule_example(readme)["id"], result.stdout
    assert created["rule"]["effect"] == "allow"

    after = _explained(server, device_id)
    assert after["action"] == "install", after
    assert after["release"]["build"] == "1.1"
    assert any(r.startswith("rule security-updates (priority 10) allows") for r in after["reasons"])
