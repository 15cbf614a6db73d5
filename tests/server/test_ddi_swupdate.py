"""The real SWUpdate from Debian, in suricatta's hawkBit mode, against the server on
127.0.0.1: it polls, downloads a signed .swu, checks it with the maker's certificate,
writes it raw into a file standing for a partition and reports; the server records the
delivery in its audit chain under the rule that allowed it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from patchline.cli.main import main
from tests.server.ddi_helpers import ALLOW_ALL, TENANT, DdiServer, ddi_server

__all__ = ["ddi_server"]

SWUPDATE = shutil.which("swupdate")
TOKEN = "0123456789abcdef0123456789abcdef"

pytestmark = [
    pytest.mark.skipif(SWUPDATE is None, reason="Debian's swupdate is not installed"),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


class SwUpdate:
    """One ``swupdate`` process with its own socket directory."""

    def __init__(self, server: DdiServer, workdir: Path, controller_id: str, token: str) -> None:
        self.server = server
        self.workdir = workdir
        self.controller_id = controller_id
        self.token = token
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "swupdate.log"

    def start(self, *extra: str) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        suricatta = (
            f"-t {TENANT} -u {self.server.url} -i {self.controller_id} -k {self.token} -p 1"
            + "".join(f" {e}" for e in extra)
        )
        assert SWUPDATE is not None
        self.process = subprocess.Popen(
            [SWUPDATE, "-v", "-H", "board:1.0", "-k", str(self.server.cert), "-u", suricatta],
            env={**os.environ, "TMPDIR": str(self.workdir)},
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,  # its forked helpers end with it (stop)
        )

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def swupdates(tmp_path: Path) -> Iterator[list[SwUpdate]]:
    started: list[SwUpdate] = []
    yield started
    for each in started:
        each.stop()


def wait_for(what: str, check: Callable[[], Any], agent: SwUpdate, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; SWUpdate said:\n{agent.output()[-4000:]}")


def test_swupdate_installs_a_signed_swu_and_the_chain_holds_it_under_its_rule(
    ddi_server: DdiServer,
    tmp_path: Path,
    swupdates: list[SwUpdate],
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = ddi_server
    assert server.api().post("/api/policies", json=ALLOW_ALL).status_code == 201
    partition = tmp_path / "partition-b.img"
    partition.write_bytes(b"\0" * (96 * 1024))
    image, target = server.publish_swu("1.1", partition)
    server.enroll("ctl-1", TOKEN, "SN-1")

    agent = SwUpdate(server, tmp_path / "swupdate", "ctl-1", TOKEN)
    swupdates.append(agent)
    agent.start()
    wait_for("the image in the partition", lambda: partition.read_bytes() == image, agent)
    # The device "reboots" into the new build and confirms the install, as a device's
    # startup does after an update: SWUpdate reports the action closed with success.
    wait_for("the install under way", lambda: server.device("ctl-1")["install_state"], agent)
    agent.stop()
    agent.start("-c", "2")
    device = wait_for(
        "the device on 1.1",
        lambda: (d := server.device("ctl-1"))["build"] == "1.1" and d,
        agent,
    )
    assert device["install_state"] == "booted-healthy"
    assert device["assigned_build"] == "1.1"

    records = server.audit("ctl-1")
    decisions = [r for r in records if r["kind"] == "decision" and r["payload"]["build"] == "1.1"]
    assert decisions
    assert decisions[0]["payload"]["rules"] == ["normal"]
    assert decisions[0]["payload"]["target"] == target
    reports = [r for r in records if r["kind"] == "report"]
    assert any(r["payload"]["status"] == "booted-healthy" for r in reports)
    assert all(r["payload"]["source"] == "ddi" for r in reports)
    capsys.readouterr()
    os.environ["PATCHLINE_DATABASE_URL"] = server.database_url
    try:
        assert main(["--home", str(server.home), "audit", "verify"]) == 0
    finally:
        del os.environ["PATCHLINE_DATABASE_URL"]


def test_a_rule_forbidding_the_release_offers_swupdate_nothing_and_names_the_rule(
    ddi_server: DdiServer, tmp_path: Path, swupdates: list[SwUpdate]
) -> None:
    server = ddi_server
    api = server.api()
    assert api.post("/api/policies", json=ALLOW_ALL).status_code == 201
    hold = {"id": "hold-alpha", "effect": "block", "priority": 20, "models": ["alpha"]}
    assert api.post("/api/policies", json=hold).status_code == 201
    partition = tmp_path / "partition-b.img"
    partition.write_bytes(b"\0" * (96 * 1024))
    server.publish_swu("1.1", partition)
    server.enroll("ctl-2", TOKEN, "SN-2")

    agent = SwUpdate(server, tmp_path / "swupdate", "ctl-2", TOKEN)
    swupdates.append(agent)
    agent.start()
    wait_for("two polls", lambda: agent.output().count("No pending action on server") >= 2, agent)
    assert partition.read_bytes() == b"\0" * (96 * 1024)
    assert "deploymentBase" not in agent.output()
    device = server.device("ctl-2")
    assert device["build"] == "1.0"
    assert device["install_state"] is None
    explained = api.get("/api/devices/ctl-2/explain").json()
    assert explained["decision"]["action"] == "none"
    assert "hold-alpha" in " ".join(explained["decision"]["reasons"])
    decisions = [r for r in server.audit("ctl-2") if r["kind"] == "decision"]
    assert decisions[-1]["payload"]["action"] == "none"
    assert "hold-alpha" in " ".join(decisions[-1]["payload"]["reasons"])
    poll = server.controller("ctl-2", TOKEN).get("").json()
    assert "deploymentBase" not in poll["_links"]
    assert "hold-alpha" in " ".join(poll["patchline"]["reasons"])


def test_a_failed_install_is_reported_failed_and_halts_the_rollout_by_its_failure_brake(
    ddi_server: DdiServer, tmp_path: Path, swupdates: list[SwUpdate]
) -> None:
    server = ddi_server
    api = server.api()
    assert api.post("/api/policies", json=ALLOW_ALL).status_code == 201
    # The raw handler cannot open a partition that does not exist: the install fails.
    server.publish_swu("1.1", tmp_path / "no-such-dir" / "partition-b.img")
    rollout = {
        "model": "alpha",
        "build": "1.1",
        "phases": [{"percent": 100, "soak_hours": 1}],
        "brakes": {"min_installs": 1, "max_failure_rate": 0.05},
    }
    created = api.post("/api/rollouts", json=rollout)
    assert created.status_code == 201, created.text
    server.enroll("ctl-3", TOKEN, "SN-3")

    agent = SwUpdate(server, tmp_path / "swupdate", "ctl-3", TOKEN)
    swupdates.append(agent)
    agent.start()
    device = wait_for(
        "the failure report",
        lambda: (d := server.device("ctl-3"))["install_state"] == "failed" and d,
        agent,
    )
    assert device["build"] == "1.0"
    failed = [r for r in device["reports"] if r["status"] == "failed"]
    assert failed
    assert failed[0]["code"] == "install-failed"
    halted = wait_for(
        "the rollout halted",
        lambda: (r := api.get("/api/rollouts/R-1").json())["state"] == "halted" and r,
        agent,
    )
    assert "failure" in json.dumps(halted["history"])
    facts = api.get("/api/devices/ctl-3/facts").json()
    assert [f["build"] for f in facts["failed_builds"]] == ["1.1"]


# SWUpdate binds fixed control sockets in /tmp: every test that runs it lives in this
# module, so they never run at once (the suite spreads whole files over its workers).
@pytest.mark.skipif(shutil.which("swupdate") is None, reason="Debian's swupdate is not installed")
def test_swupdate_accepts_a_built_swu_only_with_the_makers_certificate(
    tmp_path: Path, database_url: str
) -> None:
    """The module runs on SQLite; this test needs no database (``database_url`` unused)."""
    home = ["--home", str(tmp_path)]
    assert main([*home, "swu", "test-certificate", str(tmp_path / "maker")]) == 0
    assert main([*home, "swu", "test-certificate", str(tmp_path / "other")]) == 0
    image = tmp_path / "rootfs.img"
    image.write_bytes(hashlib.sha256(b"rootfs").digest() * 2048)
    partition = tmp_path / "partition.img"
    partition.write_bytes(b"\0" * len(image.read_bytes()))
    swu = tmp_path / "update.swu"
    maker = tmp_path / "maker"
    args = ["swu", "build", str(image), "--out", str(swu), "--version", "1.1"]
    args += ["--device", str(partition), "--key", str(maker / "signing.key")]
    assert main([*home, *args, "--cert", str(maker / "signing.crt")]) == 0

    scratch = tmp_path / "swupdate"  # SWUpdate extracts into TMPDIR and empties it
    scratch.mkdir()

    log = tmp_path / "swupdate-check.log"

    def check(cert: Path, file: Path) -> int:
        # SWUpdate forks helpers that can outlive it: run it in its own session, wait
        # for it alone (not for its output pipes), then end the whole session.
        with log.open("ab") as out:
            process = subprocess.Popen(
                ["swupdate", "-c", "-H", "board:1.0", "-k", str(cert), "-i", str(file)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={"TMPDIR": str(scratch), "PATH": "/usr/bin:/bin"},
                start_new_session=True,
            )
            try:
                return process.wait(timeout=60)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)

    # SWUpdate's check mode has been seen to exit 1 once on a loaded machine for a .swu it
    # accepted on the next try; acceptance gets three tries (a broken build never passes),
    # refusals one.
    accepted = [check(maker / "signing.crt", swu) for _ in range(3)]
    assert 0 in accepted, log.read_text(errors="replace")[-3000:]
    assert check(tmp_path / "other" / "signing.crt", swu) != 0
    tampered = tmp_path / "tampered.swu"
    data = bytearray(swu.read_bytes())
    data[data.index(b"version") + 11] ^= 1  # inside the signed sw-description
    tampered.write_bytes(bytes(data))
    assert check(maker / "signing.crt", tampered) != 0
    assert partition.read_bytes() == b"\0" * len(image.read_bytes())  # -c writes nothing
