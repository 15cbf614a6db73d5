"""The demo's story, told as it runs: publish, serve statically, update, rotate, refuse."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from patchline.demo.device import DemoDevice
from patchline.demo.static_host import StaticHost
from patchline.repository import (
    ReleaseRequest,
    Repository,
    RepositoryConfig,
    add_model,
    add_release,
    init_repository,
    repository_status,
    rotate_key,
)
from patchline.repository.passphrases import PassphraseSource
from patchline.settings import Settings
from patchline.wire.release import Eligibility, UpdateClass

Say = Callable[[str], None]
DEMO_PASSPHRASE = "demo-only-passphrase"  # noqa: S105 - public on purpose, demo keys only


def make_image(model: str, build: str, size: int = 256 * 1024) -> bytes:
    """Deterministic bytes standing in for a system image of ``model`` at ``build``."""
    seed = hashlib.sha256(f"{model}/{build}".encode()).digest()
    blocks = (size + len(seed) - 1) // len(seed)
    return b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(blocks))[
        :size
    ]


def _publish(repo: Repository, workdir: Path, model: str, build: str, spl: str, cls: str) -> None:
    image = workdir / f"{model}-{build}.img"
    image.write_bytes(make_image(model, build))
    add_release(
        repo,
        ReleaseRequest(
            image=image,
            model=model,
            build=build,
            security_patch_level=date.fromisoformat(spl),
            update_class=UpdateClass(cls),
            eligibility=Eligibility(),
        ),
    )


def run_demo(workdir: Path, port: int, say: Say, settings: Settings) -> StaticHost:
    """Run the story in ``workdir`` (wiped first); return the host, still serving."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    env = dict(os.environ)
    env.setdefault("PATCHLINE_PASSPHRASE", DEMO_PASSPHRASE)
    passphrases = PassphraseSource(env, interactive=False)
    home = workdir / "repo"

    say("[bold]1. A signed repository[/]")
    started = time.perf_counter()
    repo = init_repository(
        home,
        RepositoryConfig(keys_dir=home / "keys"),
        settings=settings,
        passphrases=passphrases,
    )
    say(
        f"   Created {home}: root keys 2 of 3, one key each for targets, snapshot and "
        f"timestamp, encrypted (scrypt + AES-GCM) in {home / 'keys'}, apart from the public "
        f"tree ({time.perf_counter() - started:.1f} s)."
    )
    for model in ("aurora-5g", "nimbus-lite"):
        add_model(repo, model)
    say("   Models aurora-5g and nimbus-lite each get their own signed role and key, so a")
    say("   device downloads only its own model's metadata.")

    say("[bold]2. Releases[/]")
    _publish(repo, workdir, "aurora-5g", "1.0", "2026-08-05", "functional")
    _publish(repo, workdir, "nimbus-lite", "3.0", "2026-08-05", "functional")
    shipped_root = repo.layout.metadata_file("root", 1).read_bytes()
    say("   Factory builds aurora-5g 1.0 and nimbus-lite 3.0 published; devices ship with root v1.")
    _publish(repo, workdir, "aurora-5g", "1.1", "2026-10-05", "security")
    _publish(repo, workdir, "nimbus-lite", "3.1", "2026-10-05", "security")
    say("   Security updates aurora-5g 1.1 and nimbus-lite 3.1 (patch level 2026-10-05) signed.")

    say("[bold]3. A plain static host serves the public tree[/]")
    host = StaticHost(repo.layout.public_dir, port=port).start()
    say(f"   {host.url} serves {repo.layout.public_dir}: no logic, just files. Any CDN,")
    say("   mirror or SD card could serve the same bytes; devices trust signatures, not hosts.")

    say("[bold]4. Devices update[/]")
    devices = [
        DemoDevice(workdir / "devices" / "phone-001", "aurora-5g", "1.0", shipped_root),
        DemoDevice(workdir / "devices" / "phone-002", "nimbus-lite", "3.0", shipped_root),
        DemoDevice(workdir / "devices" / "phone-003", "aurora-5g", "1.0", shipped_root),
    ]
    for device in devices[:2]:
        outcome = device.update(host.url)
        say(f"   {device.directory.name} ({device.model}): {outcome.message}")

    say("[bold]5. Keys rotated: timestamp key and one root key[/]")
    rotate_key(repo, "timestamp")
    root_key = repo.state().root.signed.roles["root"].keyids[0]
    rotated = rotate_key(repo, "root", root_key)
    _publish(repo, workdir, "aurora-5g", "1.2", "2026-11-05", "security")
    say(
        f"   Root is now v{rotated.root_version}; aurora-5g 1.2 (patch level 2026-11-05) is "
        "signed under the new keys."
    )
    outcome = devices[2].update(host.url)
    say(
        f"   {devices[2].directory.name} trusts only root v1 and walks the root chain: "
        f"{outcome.message}"
    )

    say("[bold]6. A mirror that changes a byte is refused[/]")
    _publish(repo, workdir, "nimbus-lite", "3.2", "2026-11-05", "security")
    mirror_dir = workdir / "evil-mirror"
    shutil.copytree(repo.layout.public_dir, mirror_dir)
    newest = next((mirror_dir / "targets" / "nimbus-lite" / "3.2").glob("*.img"))
    tampered = bytearray(newest.read_bytes())
    tampered[1000] ^= 0xFF
    newest.write_bytes(bytes(tampered))
    evil = StaticHost(mirror_dir).start()
    try:
        outcome = devices[1].update(evil.url)
    finally:
        evil.stop()
    say(f"   {devices[1].directory.name} via {evil.url}: {outcome.message}")
    outcome = devices[1].update(host.url)
    say(f"   {devices[1].directory.name} via {host.url}: {outcome.message}")

    say("[bold]7. Repository status[/]")
    status = repository_status(repo)
    for role in status.roles:
        say(
            f"   {role.name:12} v{role.version:<3} threshold {role.threshold}  "
            f"expires {role.expires:%Y-%m-%d %H:%M} UTC"
        )
    for entry in status.models:
        say(
            f"   {entry.name}: {entry.releases} releases, newest {entry.newest_build} "
            f"(patch level {entry.newest_patch_level})"
        )
    return host
