"""``patchline demo`` serving on: within a minute the console's overview shows a chart
with the simulated fleet in it, and the rollout the demo started."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import free_port


@pytest.mark.long
def test_the_demo_fills_the_consoles_overview_within_a_minute(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    command = "import sys; from patchline.cli.main import main; sys.exit(main(sys.argv[1:]))"
    args = ["demo", "--port", str(port), "--workdir", str(tmp_path / "demo")]
    args += ["--fleet", "120", "--fleet-days", "5"]
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-c", command, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "400"},
            # A test run started in the background by a shell ignores SIGINT, and the
            # demo would inherit that: Ctrl-C must reach it as it does from a terminal.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    started = time.monotonic()
    try:
        token = None
        while token is None and time.monotonic() - started < 60:
            found = re.search(r"token above: (pl_[\w-]+)", log.read_text())
            token = found.group(1) if found else None
            time.sleep(0.5)
        assert token, log.read_text()[-3000:]
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        form = client.get("/sign-in").text
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', form)
        assert csrf
        client.post("/sign-in", data={"csrf": csrf.group(1), "token": token})
        devices = 0
        while devices < 100 and time.monotonic() - started < 60:
            html = client.get("/").text
            chart = re.search(r'id="data-patch-levels">(.*?)</script>', html)
            assert chart, html[-2000:]
            devices = sum(sum(d["data"]) for d in json.loads(chart.group(1))["datasets"])
            time.sleep(1)
        assert devices >= 100, f"{devices} devices on the overview after 60 s"
        assert "R-1" in client.get("/rollouts").text
    finally:
        demo.send_signal(signal.SIGINT)  # as Ctrl-C: the demo stops its fleet and server
        try:
            demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            demo.kill()
            pytest.fail(f"the demo did not stop within 60 s of Ctrl-C: {log.read_text()[-3000:]}")
    assert "Stopped." in log.read_text()
