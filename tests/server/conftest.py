"""A real server process on a real port, over a repository and a database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from patchline.cli.main import main
from patchline.director.identity import create_director
from patchline.repository import Repository
from tests.conftest import PASSPHRASE

ENROLLMENT_TOKEN = "enroll-me-please-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    """A ``patchline serve`` process and how to reach it."""

    url: str
    home: Path
    database_url: str
    process: subprocess.Popen[bytes]
    admin_token: str

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def api(self) -> httpx.Client:
        return self.client(self.admin_token)


def server_env(home: Path, database_url: str, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PATCHLINE_HOME": str(home),
        "PATCHLINE_DATABASE_URL": database_url,
        "PATCHLINE_ENROLLMENT_TOKEN": ENROLLMENT_TOKEN,
        "PATCHLINE_PASSPHRASE": PASSPHRASE,
        "PATCHLINE_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }


def start_server(
    home: Path,
    database_url: str,
    port: int | None = None,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``patchline serve`` (with ``env`` added to its environment) and wait until it
    answers /healthz. Its output goes to ``log`` (default: ``server.log`` in ``home``),
    never to a pipe nobody reads: a full pipe would stop the server at its next log line."""
    port = port or free_port()
    log = log or home / "server.log"
    exe = Path(sys.executable).parent / "patchline"
    process = subprocess.Popen(
        [str(exe), "--home", str(home), "serve", "--port", str(port)],
        env={**server_env(home, database_url, port), **(env or {})},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out = log.read_text(errors="replace")
            raise RuntimeError(f"server exited with {process.returncode}: {out}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                process.port = port  # type: ignore[attr-defined]
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not come up in 60 s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def make_token(
    home: Path, database_url: str, name: str, role: str, capsys: pytest.CaptureFixture[str]
) -> str:
    os.environ["PATCHLINE_DATABASE_URL"] = database_url
    try:
        capsys.readouterr()
        assert main(["--home", str(home), "token", "create", name, "--role", role]) == 0
        return capsys.readouterr().out.strip()
    finally:
        del os.environ["PATCHLINE_DATABASE_URL"]


@pytest.fixture
def server(
    repo: Repository, database_url: str, capsys: pytest.CaptureFixture[str]
) -> Iterator[RunningServer]:
    """The repository fixture with a director, served with ``database_url``."""
    create_director(repo)
    home = repo.layout.home
    process = start_server(home, database_url)
    token = make_token(home, database_url, "admin", "admin", capsys)
    running = RunningServer(
        f"http://127.0.0.1:{process.port}",  # type: ignore[attr-defined]
        home,
        database_url,
        process,
        token,
    )
    yield running
    stop_server(process)
