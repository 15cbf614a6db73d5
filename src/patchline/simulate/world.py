"""The server a simulation runs against, on the simulation's clock.

Three ways to have one:

- ``SimWorld.create``: a new home in a work folder (a signed repository with two models,
  a factory build and an update each, a director, a SQLite or given database, a rule
  allowing every update), served by ``patchline serve`` in its own process;
- ``SimWorld.on_home``: ``patchline serve`` on an existing home (its repository, director,
  database and rules);
- ``SimWorld.remote``: a server already running, started with
  ``PATCHLINE_SIMULATED_CLOCK_FILE`` naming the clock file this simulation writes.

The server process reads time from the clock file (``patchline.clock.FileClock``); the
simulation moves it with ``set_time`` between steps, when no device call is in flight.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import httpx

from patchline.clock import FixedClock, write_clock_file
from patchline.director.identity import create_director
from patchline.errors import SimulationError
from patchline.repository import (
    ReleaseRequest,
    RepositoryConfig,
    add_model,
    add_release,
    init_repository,
)
from patchline.repository.passphrases import PassphraseSource
from patchline.server.auth import Role, create_token
from patchline.settings import Settings
from patchline.store.db import Database
from patchline.store.migrate import upgrade
from patchline.wire.release import UpdateClass

#: The passphrase of the keys of a home the simulation makes (thrown away with it).
SIM_PASSPHRASE = "simulated-fleet-only"  # noqa: S105 - keys of a throwaway home
#: Models of a home the simulation makes: (model, factory build, update build).
MODELS = (("aurora", "1.0", "1.1"), ("nimbus", "3.0", "3.1"))


@dataclass
class SimWorld:
    """A server on the simulation's clock, and what the simulation needs to talk to it."""

    server_url: str
    api_token: str
    enrollment_token: str
    clock_file: Path
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    _client: httpx.Client | None = None
    #: Further servers on the same database and clock file; device calls are spread over
    #: ``server_url`` and these, lane by lane (as a load balancer would).
    also: list[str] = field(default_factory=list)

    def lane_url(self, lane: int) -> str:
        """The server the ``lane``-th connection talks to."""
        urls = [self.server_url, *self.also]
        return urls[lane % len(urls)]

    @classmethod
    def create(
        cls,
        workdir: Path,
        start: datetime,
        settings: Settings,
        database_url: str | None = None,
    ) -> SimWorld:
        """Make a new home in ``workdir`` (which must not hold one), signed on ``start``,
        and serve it; see the module's docstring."""
        home = workdir / "home"
        passphrases = PassphraseSource({"PATCHLINE_PASSPHRASE": SIM_PASSPHRASE}, interactive=False)
        clock = FixedClock(start)
        repo = init_repository(
            home,
            RepositoryConfig(keys_dir=home / "keys"),
            settings=settings,
            passphrases=passphrases,
            clock=clock,
        )
        images = workdir / "images"
        images.mkdir(parents=True, exist_ok=True)
        patch_levels = (start.date().replace(day=1), start.date())
        for model, *builds in MODELS:
            add_model(repo, model)
            for build, patch_level in zip(builds, patch_levels, strict=True):
                image = images / f"{model}-{build}.img"
                image.write_bytes(_image(model, build))
                add_release(
                    repo,
                    ReleaseRequest(image, model, build, patch_level, UpdateClass.SECURITY),
                )
        create_director(repo)
        world = cls.on_home(
            home,
            workdir,
            start,
            database_url or f"sqlite:///{workdir / 'server.db'}",
            {"PATCHLINE_PASSPHRASE": SIM_PASSPHRASE},
        )
        try:
            world.api(
                "POST",
                "/api/policies",
                {"id": "simulate", "title": "Every update", "effect": "allow", "priority": 10},
            )
        except SimulationError:
            world.close()
            raise
        return world

    @classmethod
    def on_home(
        cls,
        home: Path,
        workdir: Path,
        start: datetime,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> SimWorld:
        """Serve ``home`` (its repository and director; its database unless
        ``database_url``) in a new process on a free port, on a clock file in
        ``workdir`` set to ``start``; SimulationError when it does not come up."""
        workdir.mkdir(parents=True, exist_ok=True)
        clock_file = workdir / "clock"
        write_clock_file(clock_file, start)
        environ = {**os.environ, **(env or {})}
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        settings = Settings.from_env(environ, home=home.absolute(), host="127.0.0.1", port=port)
        database_url = database_url or settings.server_database_url()
        db = Database.connect(database_url)
        upgrade(db)
        with db.transaction() as session:
            api_token = create_token(session, f"simulate-{secrets.token_hex(4)}", Role.ADMIN, start)
        db.dispose()
        enrollment_token = (
            settings.enrollment_token.get_secret_value() if settings.enrollment_token else None
        ) or f"simulate-{secrets.token_hex(12)}"
        log = (workdir / "server.log").open("ab")
        command = [sys.executable, "-m", "patchline.cli.main", "--home", str(home), "serve"]
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env={
                **environ,
                "PATCHLINE_DATABASE_URL": database_url,
                "PATCHLINE_ENROLLMENT_TOKEN": enrollment_token,
                "PATCHLINE_PUBLIC_URL": url,
                "PATCHLINE_SIMULATED_CLOCK_FILE": str(clock_file.absolute()),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        world = cls(url, api_token, enrollment_token, clock_file, process, log)
        world._wait_until_up(workdir / "server.log")
        return world

    @classmethod
    def remote(
        cls, server_url: str, clock_file: Path, enrollment_token: str, api_token: str
    ) -> SimWorld:
        """A server already running on ``clock_file`` (its
        ``PATCHLINE_SIMULATED_CLOCK_FILE``), reached at ``server_url``."""
        return cls(server_url.rstrip("/"), api_token, enrollment_token, clock_file)

    def set_time(self, instant: datetime) -> None:
        """Move the shared clock to ``instant``."""
        write_clock_file(self.clock_file, instant)

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """``method path`` on the management API as the simulation's admin; the decoded
        answer. SimulationError on an error status or no answer."""
        if self._client is None:
            self._client = httpx.Client(
                headers={"Authorization": f"Bearer {self.api_token}"}, timeout=60
            )
        try:
            response = self._client.request(method, f"{self.server_url}{path}", json=body)
        except httpx.HTTPError as exc:
            raise SimulationError(f"{method} {path} on {self.server_url}: {exc}") from None
        if response.status_code >= 400:
            raise SimulationError(
                f"{method} {path}: HTTP {response.status_code} {response.text[:300]}",
                hint="the simulation needs an admin token of that server (--api-token)",
            )
        return response.json()

    def close(self) -> None:
        """Stop the server process this world started (its writes flushed)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def _wait_until_up(self, log: Path, timeout: float = 60) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        probe = httpx.Client(timeout=1)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                said = log.read_text(errors="replace")[-2000:]
                probe.close()
                self.close()
                raise SimulationError(f"the simulation's server exited: {said}")
            try:
                if probe.get(f"{self.server_url}/healthz").status_code == 200:
                    probe.close()
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        probe.close()
        self.close()
        raise SimulationError(f"the simulation's server did not answer in {timeout:.0f} s")


def _image(model: str, build: str, size: int = 64 * 1024) -> bytes:
    """Deterministic bytes standing in for a system image."""
    seed = hashlib.sha256(f"{model}/{build}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
