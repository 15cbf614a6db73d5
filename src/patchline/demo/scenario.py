"""The demo's story, told as it runs.

A signed repository and a director; the update server on 127.0.0.1 (SQLite in the
demo's folder); phones running the real device agent; rules that tighten the way a
regulator's order would; keys rotated; the server going dark while a mirror carries on;
a tampered mirror refused; and the audit chain verified at the end.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import msgspec
from pydantic import SecretStr

from patchline.agent import Agent, DeviceConfig, HealthCheck, Limits, create_device
from patchline.agent.enrollment import enroll
from patchline.clock import SystemClock, write_clock_file
from patchline.demo.api_client import call_api
from patchline.demo.server_thread import ServerThread
from patchline.demo.static_host import StaticHost
from patchline.director.identity import create_director, director_root_path
from patchline.errors import PatchlineError
from patchline.repository import (
    ReleaseRequest,
    Repository,
    RepositoryConfig,
    add_model,
    add_release,
    init_repository,
    rotate_key,
)
from patchline.repository.passphrases import PassphraseSource
from patchline.server.app import create_app
from patchline.server.auth import Role, create_token
from patchline.settings import Settings
from patchline.store.db import Database
from patchline.store.migrate import upgrade
from patchline.transport.http import http_pool
from patchline.wire.release import UpdateClass

Say = Callable[[str], None]
DEMO_PASSPHRASE = "demo-only-passphrase"  # noqa: S105 - public on purpose, demo keys only
ENROLLMENT_TOKEN = "demo-enrollment-token-0001"  # noqa: S105 - demo only
MARKER = b"PATCHLINE-HEALTHY"


def make_image(model: str, build: str, size: int = 512 * 1024, healthy: bool = True) -> bytes:
    """Deterministic bytes standing in for a system image; builds of a model share most
    of their bytes (so deltas are small) and a healthy image carries the boot marker."""
    seed = hashlib.sha256(model.encode()).digest()
    blocks = [hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(size // 32)]
    body = bytearray(b"".join(blocks))
    change = hashlib.sha256(f"{model}/{build}".encode()).digest() * 64
    offset = (sum(map(ord, build)) * 4096) % (size - len(change))
    body[offset : offset + len(change)] = change
    body[: len(MARKER)] = MARKER if healthy else b"X" * len(MARKER)
    return bytes(body)


@dataclass
class Demo:
    """Everything the story touches."""

    workdir: Path
    say: Say
    repo: Repository
    passphrases: PassphraseSource
    settings: Settings
    api_token: str = ""
    server: ServerThread | None = None
    server_url: str = ""
    #: The simulated clock the server reads once the fleet simulation may move it.
    clock_file: Path | None = None

    def publish(self, model: str, build: str, spl: str, cls: str, healthy: bool = True) -> str:
        image = self.workdir / "images" / f"{model}-{build}.img"
        image.parent.mkdir(exist_ok=True)
        image.write_bytes(make_image(model, build, healthy=healthy))
        published = add_release(
            self.repo,
            ReleaseRequest(
                image=image,
                model=model,
                build=build,
                security_patch_level=date.fromisoformat(spl),
                update_class=UpdateClass(cls),
            ),
        )
        deltas = ", ".join(
            f"delta from {d.source_build} {d.length // 1024} KiB" for d in published.deltas
        )
        return f"{model} {build} ({cls}, patch level {spl}, {published.length // 1024} KiB" + (
            f"; {deltas})" if deltas else ")"
        )

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return call_api(self.server_url, self.api_token, method, path, body)

    def start_server(self, port: int, clock_file: Path | None = None) -> None:
        settings = Settings(
            home=self.repo.layout.home,
            port=port,
            enrollment_token=SecretStr(ENROLLMENT_TOKEN),
            database_url=f"sqlite:///{self.workdir / 'server.db'}",
            kdf_log2n=self.settings.kdf_log2n,
            simulated_clock_file=clock_file,
        )
        app = create_app(settings, passphrases=self.passphrases)
        self.server = ServerThread(app, "127.0.0.1", port).start()
        self.server_url = self.server.url

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def _phone(
    demo: Demo, name: str, model: str, build: str, mirrors: list[str], **extra: Any
) -> Agent:
    factory = demo.workdir / "images" / f"{model}-{build}.img"
    device = create_device(
        demo.workdir / "phones" / name,
        DeviceConfig(
            model=model,
            region=extra.pop("region", "DE"),
            deployed_on=extra.pop("deployed_on", "2026-03-01"),
            server_url=demo.server_url,
            server_repository_url=f"{demo.server_url}/repository",
            mirrors=mirrors,
            limits=Limits(deadline_seconds=60, connect_timeout_seconds=2),
            health=HealthCheck(marker=MARKER.decode()),
            **extra,
        ),
        shipped_root=demo.repo.layout.metadata_file("root", 1).read_bytes(),
        director_root=director_root_path(demo.repo.layout.home).read_bytes(),
        image=factory,
        build=build,
        security_patch_level=date(2026, 8, 5),
    )
    enroll(device, http_pool(2, 10), token=ENROLLMENT_TOKEN, serial=name, hardware_id=f"hw-{name}")
    return Agent(device, clock=SystemClock())


def _update(demo: Demo, agent: Agent) -> str:
    name = agent.device.path.name
    try:
        result = agent.update()
    except PatchlineError as exc:
        first_line = exc.message.splitlines()[0]
        return f"   {name}: {first_line}"
    refused = "".join(f"\n      first tried {a.source}: {a.reason}" for a in result.attempts)
    return f"   {name}: {result.message}{refused}"


def run_demo(workdir: Path, port: int, say: Say, settings: Settings) -> Demo:
    """Run the story in ``workdir`` (wiped first); return the demo with its server up."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    env = dict(os.environ)
    env.setdefault("PATCHLINE_PASSPHRASE", DEMO_PASSPHRASE)
    passphrases = PassphraseSource(env, interactive=False)
    home = workdir / "repo"

    say("[bold]1. A signed repository and a director[/]")
    repo = init_repository(
        home, RepositoryConfig(keys_dir=home / "keys"), settings=settings, passphrases=passphrases
    )
    for model in ("aurora-5g", "nimbus-lite"):
        add_model(repo, model)
    create_director(repo)
    demo = Demo(workdir, say, repo, passphrases, settings)
    say("   Root 2 of 3 keys; one key per role and per model (aurora-5g, nimbus-lite), encrypted")
    say("   in repo/keys; the director's own root signs per-device decisions (Uptane).")

    say("[bold]2. Releases[/]")
    say("   " + demo.publish("aurora-5g", "1.0", "2026-08-05", "functional"))
    say("   " + demo.publish("nimbus-lite", "3.0", "2026-08-05", "functional"))
    say("   " + demo.publish("aurora-5g", "1.1", "2026-10-05", "security"))
    say("   " + demo.publish("nimbus-lite", "3.1", "2026-10-05", "security"))

    say(f"[bold]3. The update server on http://127.0.0.1:{port}[/] (SQLite in {workdir})")
    db = Database.connect(f"sqlite:///{workdir / 'server.db'}")
    upgrade(db)
    with db.transaction() as session:
        demo.api_token = create_token(session, "demo-admin", Role.ADMIN, SystemClock().now())
    db.dispose()
    demo.start_server(port)
    demo.api(
        "POST",
        "/api/policies",
        {
            "id": "normal",
            "title": "Normal operations",
            "effect": "allow",
            "priority": 10,
        },
    )
    say("   Rule 'normal' allows every update. Bytes come from /repository: plain files.")

    mirror_dir = workdir / "mirror"
    shutil.copytree(repo.layout.public_dir, mirror_dir)
    mirror = StaticHost(mirror_dir).start()
    phones = [
        _phone(demo, "phone-001", "aurora-5g", "1.0", [mirror.url]),
        _phone(demo, "phone-002", "nimbus-lite", "3.0", [mirror.url]),
        _phone(demo, "phone-003", "aurora-5g", "1.0", [mirror.url], deployed_on="2026-11-20"),
    ]
    say("[bold]4. Phones enroll, check in and update[/]")
    for phone in phones[:2]:
        say(_update(demo, phone))

    say("[bold]5. A build that fails its health check rolls back by itself[/]")
    say("   " + demo.publish("aurora-5g", "1.2", "2026-10-05", "corrective", healthy=False))
    demo.api("POST", "/api/releases/sync")
    say(_update(demo, phones[2]))
    state = demo.api("GET", f"/api/devices/{phones[2].device.load_config().device_id}")
    say(f"   The server sees phone-003 as: {state['install_state']} (on build {state['build']}).")

    say("[bold]6. Rules tighten, as a regulator's order would[/]")
    today = SystemClock().now().date()
    demo.api(
        "POST",
        "/api/policies",
        {
            "id": "denial",
            "title": "Denial order",
            "effect": "block",
            "priority": 100,
            "valid_from": today.isoformat(),
        },
    )
    demo.api(
        "POST",
        "/api/policies",
        {
            "id": "licence-L1",
            "title": "Security licence",
            "effect": "allow",
            "priority": 200,
            "update_classes": ["security"],
            "deployed_before": "2026-06-01",
            "valid_from": today.isoformat(),
            "valid_until": (today + timedelta(days=30)).isoformat(),
        },
    )
    say("   'denial' blocks everything from today; 'licence-L1' allows security updates only,")
    say("   to phones deployed before 2026-06-01, for 30 days.")
    say("   " + demo.publish("aurora-5g", "1.3", "2026-11-05", "functional"))
    demo.api("POST", "/api/releases/sync")
    device_id = phones[0].device.load_config().device_id
    why = demo.api("GET", f"/api/devices/{device_id}/explain")["decision"]
    say(f"   phone-001 is offered: {why['action']}. Why: {why['reasons'][-1]}")
    say("   " + demo.publish("aurora-5g", "1.4", "2026-11-05", "security"))
    demo.api("POST", "/api/releases/sync")
    say(_update(demo, phones[0]))
    say(_update(demo, phones[2]))

    say("[bold]7. Keys rotated: timestamp and one root key; phones follow the root chain[/]")
    rotate_key(repo, "timestamp")
    rotate_key(repo, "root", repo.state().root.signed.roles["root"].keyids[0])
    say("   " + demo.publish("nimbus-lite", "3.2", "2026-11-05", "security"))
    demo.api("POST", "/api/releases/sync")
    shutil.copytree(repo.layout.public_dir, mirror_dir, dirs_exist_ok=True)

    say("[bold]8. The maker's server goes dark; the mirror carries on[/]")
    say("   (phone-002 trusts root v1 only: it walks the root chain to the rotated keys)")
    demo.stop_server()
    say(_update(demo, phones[1]))
    evil_dir = workdir / "evil-mirror"
    shutil.copytree(repo.layout.public_dir, evil_dir)
    say("   " + demo.publish("nimbus-lite", "3.3", "2026-11-05", "security"))
    shutil.copytree(repo.layout.public_dir, evil_dir, dirs_exist_ok=True)
    shutil.copytree(repo.layout.public_dir, mirror_dir, dirs_exist_ok=True)
    for image in (evil_dir / "targets" / "nimbus-lite" / "3.3").iterdir():
        data = bytearray(image.read_bytes())
        data[len(data) // 2] ^= 0xFF
        image.write_bytes(bytes(data))
    evil = StaticHost(evil_dir).start()
    config = phones[1].device.load_config()
    phones[1].device.save_config(msgspec.structs.replace(config, mirrors=[evil.url, mirror.url]))
    say("   A mirror that changed one byte of 3.3 is tried first:")
    say(_update(demo, phones[1]))
    evil.stop()

    say("[bold]9. The server is back: queued reports arrive; the audit chain holds[/]")
    demo.clock_file = workdir / "clock"
    write_clock_file(demo.clock_file, SystemClock().now())
    demo.start_server(port, demo.clock_file)
    sent = sum(phone.send_reports() for phone in phones)
    verified = demo.api("GET", "/api/audit/verify")
    say(
        f"   {sent} queued reports delivered; audit chain: {verified['entries']} entries, "
        f"{'unbroken' if verified['ok'] else 'BROKEN: ' + str(verified['problem'])}."
    )
    for phone in phones:
        row = demo.api("GET", f"/api/devices/{phone.device.load_config().device_id}")
        say(f"   {phone.device.path.name}: build {row['build']}, {row['install_state']}")
    mirror.stop()

    say("[bold]10. A staged rollout, watched from the console[/]")
    rollout = demo.api("POST", "/api/rollouts", ROLLOUT)
    demo.api(
        "PUT",
        "/api/support/nimbus-lite",
        {"security_until": today.isoformat(), "note": "two years after launch"},
    )
    say(
        f"   Rollout {rollout['id']} offers aurora-5g 1.4 to 10 %, then 50 %, then every phone, "
        "a simulated day of soak each; its brakes halt it when too many fail."
    )
    say("   nimbus-lite's promised security support ends today.")
    say(f"   Management API token (demo): {demo.api_token}")
    return demo


#: The rollout the demo starts for the simulated fleet.
ROLLOUT = {
    "model": "aurora-5g",
    "build": "1.4",
    "phases": [
        {"percent": 10, "soak_hours": 24},
        {"percent": 50, "soak_hours": 24},
        {"percent": 100, "soak_hours": 24},
    ],
}


def fleet_command(demo: Demo, devices: int, days: int) -> list[str]:
    """The command line of a simulated fleet of ``devices`` phones for ``days`` simulated
    days against the demo's server, moving the server's clock (``patchline simulate``)."""
    assert demo.clock_file is not None, "the server reads no simulated clock"
    return [
        sys.executable,
        "-c",
        "import sys; from patchline.cli.main import main; sys.exit(main(sys.argv[1:]))",
        "simulate",
        "--server",
        demo.server_url,
        "--clock-file",
        str(demo.clock_file),
        "--enrollment-token",
        ENROLLMENT_TOKEN,
        "--api-token",
        demo.api_token,
        "--devices",
        str(devices),
        "--days",
        str(days),
        "--start",
        SystemClock().now().date().isoformat(),
        "--poll-hours",
        "4",
    ]
