"""A TUF client for the tuf-conformance suite, on the agent's own code path.

The CLI protocol of tuf-conformance (CLIENT-CLI.md)::

    patchline-tuf-client --metadata-dir D init ROOT
    patchline-tuf-client --metadata-url U --metadata-dir D refresh
    patchline-tuf-client --metadata-url U --metadata-dir D --target-name T [--target-name T2]
        --target-dir D2 --target-base-url U2 download

Exit 0 on success, 1 on any failure. Metadata is refreshed by ngclient with the agent's
fetcher; targets are downloaded and verified in one pass by the agent's downloader, and
a target already in D2 with the signed length and hashes is not downloaded again.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import quote

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import TargetFile

from patchline.agent.device import Limits
from patchline.agent.transfer import download_verified, opener_for
from patchline.agent.trust import open_updater, target_url
from patchline.errors import PatchlineError
from patchline.transport.fetcher import SourceFetcher
from patchline.transport.http import http_pool

TIMEOUT_SECONDS = 10.0


def init(metadata_dir: Path, trusted_root: Path) -> None:
    """Trust ``trusted_root`` as the client's root; touches no network."""
    metadata_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(trusted_root, metadata_dir / "root.json")


def refresh(metadata_dir: Path, metadata_url: str, target_base_url: str = "") -> None:
    """Refresh top-level metadata from ``metadata_url`` (raises on any failure)."""
    pool = http_pool(TIMEOUT_SECONDS, TIMEOUT_SECONDS)
    updater = open_updater(
        metadata_dir, metadata_url, target_base_url or metadata_url, SourceFetcher(pool), None
    )
    updater.refresh()


def download(
    metadata_dir: Path,
    metadata_url: str,
    target_names: list[str],
    target_dir: Path,
    target_base_url: str,
) -> None:
    """Refresh, then make ``target_dir`` hold each named target, verified."""
    pool = http_pool(TIMEOUT_SECONDS, TIMEOUT_SECONDS)
    updater = open_updater(metadata_dir, metadata_url, target_base_url, SourceFetcher(pool), None)
    updater.refresh()
    target_dir.mkdir(parents=True, exist_ok=True)
    for name in target_names:
        info = updater.get_targetinfo(name)
        if info is None:
            raise LookupError(f"{name} is not signed by any role")
        final = target_dir / quote(info.path, safe="")
        if _is_cached(final, info):
            continue
        staging = target_dir / f".{final.name}.part"
        staging.unlink(missing_ok=True)
        url = target_url(updater, target_base_url, info)
        download_verified(opener_for(url, pool), url, info, staging, Limits())
        os.replace(staging, final)


def _is_cached(path: Path, target: TargetFile) -> bool:
    try:
        with path.open("rb") as handle:
            target.verify_length_and_hashes(handle)
    except (OSError, tuf_errors.LengthOrHashMismatchError):
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Run one tuf-conformance client command; 0 on success, 1 on any failure."""
    parser = argparse.ArgumentParser(prog="patchline-tuf-client")
    parser.add_argument("--metadata-url")
    parser.add_argument("--metadata-dir", required=True, type=Path)
    parser.add_argument("--target-name", action="append", default=[])
    parser.add_argument("--target-dir", type=Path)
    parser.add_argument("--target-base-url")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init").add_argument("trusted_root", type=Path)
    commands.add_parser("refresh")
    commands.add_parser("download")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 1
    try:
        if args.command == "init":
            init(args.metadata_dir, args.trusted_root)
        elif args.command == "refresh":
            _require(args.metadata_url, "--metadata-url")
            refresh(args.metadata_dir, args.metadata_url)
        else:
            _require(args.metadata_url, "--metadata-url")
            _require(args.target_dir, "--target-dir")
            _require(args.target_base_url, "--target-base-url")
            if not args.target_name:
                raise ValueError("download needs at least one --target-name")
            download(
                args.metadata_dir,
                args.metadata_url,
                args.target_name,
                args.target_dir,
                args.target_base_url,
            )
    except (
        PatchlineError,
        tuf_errors.RepositoryError,
        tuf_errors.DownloadError,
        OSError,
        ValueError,
        LookupError,
    ) as exc:
        print(f"patchline-tuf-client: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def _require(value: object, option: str) -> None:
    if not value:
        raise ValueError(f"{option} is required for this command")


if __name__ == "__main__":
    sys.exit(main())
