"""Publishing at scale: per-model metadata a device downloads, and time to publish.

Publishes N releases (default 1,000) round-robin across M models (default 5), then
measures with python-tuf's ngclient through a plain static host on 127.0.0.1:

- bytes of metadata a device of one model downloads on a cold refresh, and on a warm
  refresh after one new release of its model, against a reference measured in the same
  run: the same releases in one flat targets role (no per-model delegation);
- time to publish the Nth release (library, keys open) against the reference of
  python-tuf alone signing and serialising that flat targets role once, and the
  same release through the ``patchline`` command in a new process (key files opened
  with the default scrypt cost).

Also: metadata bytes and files on disk at the end, the bytes a fresh device downloads
to look up an archived build, and progress (releases, rate, load average) on standard
error. ``--time-limit S`` stops publishing after S seconds and measures at the release
reached (``releases`` is then below ``releases_asked``).

Usage: python bench/publish_scale.py [--releases 1000] [--models 5] [--time-limit S] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, TargetFile, Targets
from tuf.ngclient import Updater

from patchline.clock import SystemClock
from patchline.demo.static_host import StaticHost
from patchline.repository import (
    ReleaseRequest,
    Repository,
    RepositoryConfig,
    add_model,
    add_release,
    init_repository,
    releases_of,
)
from patchline.repository.passphrases import PassphraseSource
from patchline.settings import Settings
from patchline.wire.release import UpdateClass, model_lookup_path

PASSPHRASE = "bench-passphrase"  # noqa: S105 - a throwaway repository


def refresh_bytes(
    base_url: str, folder: Path, root: bytes, model: str, target: str | None = None
) -> int:
    """Bytes of metadata ngclient stores for one model's refresh (what it downloaded),
    and for looking up ``target`` if given (an archived build: its archive and bin)."""
    (folder / "metadata").mkdir(parents=True, exist_ok=True)
    before = {p.name: p.stat().st_mtime_ns for p in (folder / "metadata").glob("*.json")}
    updater = Updater(
        metadata_dir=str(folder / "metadata"),
        metadata_base_url=f"{base_url}/metadata/",
        target_base_url=f"{base_url}/targets/",
        bootstrap=root,
    )
    updater.refresh()
    updater.get_targetinfo(model_lookup_path(model))
    if target is not None and updater.get_targetinfo(target) is None:
        raise RuntimeError(f"{target} not found through the delegations")
    total = 0
    for path in (folder / "metadata").glob("*.json"):
        if path.name == "root.json":
            continue  # the shipped root; only newer roots would be downloaded
        if before.get(path.name) != path.stat().st_mtime_ns:
            total += path.stat().st_size
    return total


def publish_one(repo: Repository, image: Path, model: str, build: str) -> float:
    """Publish a new random 4 KiB image as ``model`` ``build``; return the seconds taken."""
    image.write_bytes(os.urandom(4096))
    started = time.perf_counter()
    add_release(
        repo,
        ReleaseRequest(
            image=image,
            model=model,
            build=build,
            security_patch_level=date(2026, 1, 1),
            update_class=UpdateClass.SECURITY,
        ),
    )
    return time.perf_counter() - started


def flat_reference(repo: Repository) -> tuple[int, float]:
    """Size of one flat targets role holding every release, and python-tuf's time to sign it."""
    state = repo.state()
    targets = Targets(expires=datetime.now(UTC) + timedelta(days=90))
    for model in state.model_names():
        every = {**state.archived_targets(model), **state.model(model).signed.targets}
        for path, target in every.items():
            targets.targets[path] = TargetFile(
                target.length, dict(target.hashes), path, dict(target.unrecognized_fields)
            )
    signer = CryptoSigner.generate_ed25519()
    times = []
    for _ in range(5):
        md = Metadata(targets)
        started = time.perf_counter()
        md.sign(signer)
        data = md.to_bytes()
        times.append(time.perf_counter() - started)
    return len(data), statistics.median(times)


def metadata_on_disk(folder: Path) -> tuple[int, int]:
    """Bytes and number of the files in the repository's metadata folder."""
    sizes = [p.stat().st_size for p in folder.iterdir()]
    return sum(sizes), len(sizes)


def run(
    releases: int, models: int, cli_check: bool, time_limit: float | None = None
) -> dict[str, Any]:
    """Run the benchmark in a temporary folder (removed afterwards); its figures."""
    with tempfile.TemporaryDirectory(prefix="patchline-bench-") as tmp:
        return _measure(Path(tmp), releases, models, cli_check, time_limit)


def _measure(
    work: Path, releases: int, models: int, cli_check: bool, time_limit: float | None
) -> dict[str, Any]:
    home = work / "repo"
    env = {"PATCHLINE_PASSPHRASE": PASSPHRASE}
    repo = init_repository(
        home,
        # Deltas are measured by bench/delta_compare.py; here only signing and publishing.
        RepositoryConfig(keys_dir=home / "keys", delta_sources=0),
        settings=Settings(kdf_log2n=Settings.from_env(os.environ).kdf_log2n),
        passphrases=PassphraseSource(env, interactive=False),
        clock=SystemClock(),
    )
    names = [f"model-{i}" for i in range(models)]
    for name in names:
        add_model(repo, name)
    image = work / "image.img"
    durations: list[float] = []
    root = repo.layout.metadata_file("root", 1).read_bytes()
    host = StaticHost(repo.layout.public_dir).start()
    cold_half = 0
    asked = releases
    started = time.monotonic()
    for i in range(releases - 1):
        if i == releases // 2:
            cold_half = refresh_bytes(host.url, work / "device-half", root, names[0])
        durations.append(publish_one(repo, image, names[i % models], f"{1 + i // models}.0"))
        elapsed = time.monotonic() - started
        if (i + 1) % 500 == 0:
            recent = sum(durations[-500:])
            print(
                f"{i + 1} releases, {elapsed:.0f} s, last 500 at {500 / recent:.1f}/s, "
                f"load {os.getloadavg()[0]:.2f}",
                file=sys.stderr,
                flush=True,
            )
        if time_limit is not None and elapsed > time_limit:
            releases = i + 2  # the next one is the measured last release
            break
    if not cold_half:
        cold_half = refresh_bytes(host.url, work / "device-half", root, names[0])

    try:
        device = work / "device"
        cold = refresh_bytes(host.url, device, root, names[0])
        last_model = names[(releases - 1) % models]
        last = publish_one(repo, image, last_model, f"{1 + (releases - 1) // models}.0")
        durations.append(last)
        warm = refresh_bytes(host.url, work / "device-warm", root, last_model)
        warm_folder = work / "device-warm"
        publish_one(repo, image, last_model, f"{2 + (releases - 1) // models}.0")
        warm_after_release = refresh_bytes(host.url, warm_folder, root, last_model)
        oldest = releases_of(repo.state(), names[0])[0]  # oldest build first: archived
        archived_lookup = refresh_bytes(
            host.url, work / "device-archived", root, names[0], oldest.target_path
        )
    finally:
        host.stop()

    state = repo.state()
    flat_role_bytes, flat_sign = flat_reference(repo)
    ts_bytes = repo.layout.timestamp_file.stat().st_size
    snap_bytes = repo.layout.metadata_file("snapshot", state.snapshot.signed.version).stat().st_size
    flat_cold = ts_bytes + snap_bytes + flat_role_bytes
    meta_bytes, meta_files = metadata_on_disk(repo.layout.metadata_dir)
    figures: dict[str, Any] = {
        "releases": releases,
        "releases_asked": asked,
        "elapsed_s": time.monotonic() - started,
        "load_average_1min_end": os.getloadavg()[0],
        "metadata_bytes_on_disk": meta_bytes,
        "metadata_files_on_disk": meta_files,
        "archived_build_lookup_bytes_fresh_device": archived_lookup,
        "models": models,
        "cold_refresh_bytes_one_model": cold,
        "cold_refresh_bytes_one_model_at_half": cold_half,
        "ratio_cold_full_vs_half": cold / cold_half,
        "warm_refresh_bytes_after_own_release": warm_after_release,
        "cold_refresh_bytes_flat_reference": flat_cold,
        "ratio_cold_vs_flat": cold / flat_cold,
        "ratio_warm_vs_flat": warm_after_release / flat_cold,
        "publish_first_10_median_s": statistics.median(durations[:10]),
        "publish_last_10_median_s": statistics.median(durations[-10:]),
        "publish_nth_s": last,
        "flat_sign_reference_s": flat_sign,
        "ratio_nth_publish_vs_flat_sign": last / flat_sign,
        "warm_refresh_bytes_first_device": warm,
    }
    if cli_check:
        image.write_bytes(os.urandom(4096))
        started = time.perf_counter()
        subprocess.run(
            [
                str(Path(sys.executable).parent / "patchline"),
                "--home",
                str(home),
                "release",
                "add",
                str(image),
                "--model",
                names[0],
                "--build",
                "9999.0",
                "--security-patch-level",
                "2026-01-01",
                "--class",
                "security",
            ],
            check=True,
            capture_output=True,
            env={**os.environ, **env},
        )
        figures["publish_via_cli_new_process_s"] = time.perf_counter() - started
    return figures


def main() -> None:
    """Parse arguments, run, print figures (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=1000)
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI timing")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds publishing")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = run(args.releases, args.models, not args.no_cli, args.time_limit)
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    f = figures
    print(f"{f['releases']} releases across {f['models']} models")
    print(
        f"cold refresh, one model: {f['cold_refresh_bytes_one_model']:,} B vs flat "
        f"{f['cold_refresh_bytes_flat_reference']:,} B = {f['ratio_cold_vs_flat']:.3f} x"
    )
    print(
        f"cold refresh, one model, after {f['releases'] // 2} releases: "
        f"{f['cold_refresh_bytes_one_model_at_half']:,} B; after {f['releases']}: "
        f"{f['ratio_cold_full_vs_half']:.3f} x that (bounded: it does not grow with history)"
    )
    print(
        f"warm refresh after a release of its model: "
        f"{f['warm_refresh_bytes_after_own_release']:,} B = {f['ratio_warm_vs_flat']:.3f} x flat"
    )
    print(
        f"publish: releases 1-10 median {f['publish_first_10_median_s'] * 1000:.1f} ms, "
        f"last 10 median {f['publish_last_10_median_s'] * 1000:.1f} ms, "
        f"release {f['releases']}: {f['publish_nth_s'] * 1000:.1f} ms = "
        f"{f['ratio_nth_publish_vs_flat_sign']:.2f} x python-tuf signing the flat role once "
        f"({f['flat_sign_reference_s'] * 1000:.1f} ms)"
    )
    if "publish_via_cli_new_process_s" in f:
        print(
            f"release {f['releases'] + 2} through the CLI in a new process: "
            f"{f['publish_via_cli_new_process_s'] * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
