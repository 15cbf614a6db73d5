"""Every refusal leaves the mirror serving exactly what it served before."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, Timestamp

from patchline.clock import FixedClock
from patchline.errors import (
    MirrorBusyError,
    MirrorError,
    MirrorExpiredError,
    MirrorMetadataRefusedError,
    MirrorRollbackError,
    MirrorSetupError,
    MirrorSourceUnreachableError,
    MirrorTargetRefusedError,
)
from patchline.mirror import sync_mirror
from patchline.mirror.lock import sync_lock
from patchline.repository import Repository
from tests.agent.conftest import closed_port_url
from tests.agent.hosts import RangeHost
from tests.conftest import START, publish
from tests.mirror.conftest import served
from tests.signing import sign_release_at

Hosts = Callable[..., RangeHost]


@pytest.fixture
def dest(repo: Repository, tmp_path: Path, root_v1: bytes, hosts: Hosts) -> Path:
    """A mirror synced with build alpha 1.0; the repository has since published 1.1."""
    publish(repo, "alpha", "1.0")
    mirror = tmp_path / "mirror"
    sync_mirror(hosts(repo.layout.public_dir).url, mirror, root=root_v1)
    publish(repo, "alpha", "1.1", "2026-02-01")
    return mirror


def refused(dest: Path, kind: type[MirrorError], source: str, **options: object) -> MirrorError:
    """Sync ``dest`` from ``source``; assert the refusal and that the mirror is untouched."""
    before = served(dest)
    with pytest.raises(kind) as caught:
        sync_mirror(source, dest, **options)  # type: ignore[arg-type]
    assert served(dest) == before
    return caught.value


def evil_copy(repo: Repository, where: Path) -> Path:
    """A copy of the repository's public tree for an attacker to alter."""
    shutil.copytree(repo.layout.public_dir, where)
    return where


def test_a_tampered_target_is_refused_and_an_honest_source_then_completes_the_sync(
    repo: Repository, dest: Path, hosts: Hosts
) -> None:
    error = refused(dest, MirrorTargetRefusedError, hosts(repo.layout.public_dir, tamper=True).url)

    assert "does not match the signed hash" in error.message
    assert error.exit_code == 35
    honest = sync_mirror(hosts(repo.layout.public_dir).url, dest)
    assert len(honest.published.targets) == 2


def test_endless_data_for_a_target_is_refused(repo: Repository, dest: Path, hosts: Hosts) -> None:
    error = refused(dest, MirrorTargetRefusedError, hosts(repo.layout.public_dir, endless=4096).url)

    assert "endless data" in error.message


def test_a_role_file_altered_after_signing_is_refused(
    repo: Repository, dest: Path, tmp_path: Path, hosts: Hosts
) -> None:
    evil = evil_copy(repo, tmp_path / "evil")
    version = repo.state().snapshot.signed.meta["alpha.json"].version
    role_file = evil / "metadata" / f"{version}.alpha.json"
    doc = json.loads(role_file.read_bytes())
    for target in doc["signed"]["targets"].values():
        target["custom"]["security_patch_level"] = "2099-12-31"
    role_file.write_text(json.dumps(doc))

    error = refused(dest, MirrorMetadataRefusedError, hosts(evil).url)

    assert type(error) is MirrorMetadataRefusedError
    assert "alpha" in error.message
    assert error.exit_code == 34


def test_a_timestamp_signed_by_an_unknown_key_is_refused(
    repo: Repository, dest: Path, tmp_path: Path, hosts: Hosts
) -> None:
    evil = evil_copy(repo, tmp_path / "evil")
    timestamp = Metadata[Timestamp].from_bytes((evil / "metadata" / "timestamp.json").read_bytes())
    timestamp.signed.version += 100
    timestamp.signatures.clear()
    timestamp.sign(CryptoSigner.generate_ed25519())
    (evil / "metadata" / "timestamp.json").write_bytes(timestamp.to_bytes())

    error = refused(dest, MirrorMetadataRefusedError, hosts(evil).url)

    assert "not signed by the trusted keys" in error.message


def test_an_expired_timestamp_is_refused_as_a_freeze(
    repo: Repository, dest: Path, hosts: Hosts
) -> None:
    late = FixedClock(START + timedelta(days=2))  # timestamps live one day

    error = refused(dest, MirrorExpiredError, hosts(repo.layout.public_dir).url, clock=late)

    assert "expired" in error.message
    assert error.exit_code == 34


def test_a_source_older_than_the_mirror_is_refused_as_a_rollback(
    repo: Repository, tmp_path: Path, root_v1: bytes, hosts: Hosts
) -> None:
    publish(repo, "alpha", "1.0")
    stale = evil_copy(repo, tmp_path / "stale")
    publish(repo, "alpha", "1.1", "2026-02-01")
    mirror = tmp_path / "mirror"
    sync_mirror(hosts(repo.layout.public_dir).url, mirror, root=root_v1)

    error = refused(mirror, MirrorRollbackError, hosts(stale).url)

    assert "older than what this mirror already holds" in error.message


def test_a_rollback_is_refused_even_when_the_mirrors_trusted_metadata_was_lost(
    repo: Repository, tmp_path: Path, root_v1: bytes, hosts: Hosts
) -> None:
    publish(repo, "alpha", "1.0")
    stale = evil_copy(repo, tmp_path / "stale")
    publish(repo, "alpha", "1.1", "2026-02-01")
    mirror = tmp_path / "mirror"
    sync_mirror(hosts(repo.layout.public_dir).url, mirror, root=root_v1)
    shutil.rmtree(mirror / ".mirror" / "metadata")

    error = refused(mirror, MirrorRollbackError, hosts(stale).url)

    assert "older than" in error.message


def test_an_unreachable_source_is_refused(dest: Path, tmp_path: Path) -> None:
    error = refused(dest, MirrorSourceUnreachableError, closed_port_url())
    assert "connection refused" in error.message
    assert error.exit_code == 33

    missing = refused(dest, MirrorSourceUnreachableError, str(tmp_path / "no-card"))
    assert "no-card" in missing.message


def test_a_sync_is_refused_at_once_while_another_sync_holds_the_lock(
    repo: Repository, dest: Path, hosts: Hosts
) -> None:
    with sync_lock(dest / ".mirror" / "sync.lock"):
        error = refused(dest, MirrorBusyError, hosts(repo.layout.public_dir).url)
    assert error.exit_code == 32
    assert sync_mirror(hosts(repo.layout.public_dir).url, dest).changed


def test_a_first_sync_needs_a_root_and_a_later_one_refuses_a_different_root(
    repo: Repository, dest: Path, tmp_path: Path, hosts: Hosts
) -> None:
    url = hosts(repo.layout.public_dir).url
    with pytest.raises(MirrorSetupError, match="--root"):
        sync_mirror(url, tmp_path / "new-mirror")
    assert not (tmp_path / "new-mirror" / "metadata").exists()

    other = Metadata.from_bytes(repo.layout.metadata_file("root", 1).read_bytes())
    other.signed.version = 1
    other.signed.consistent_snapshot = False
    refused(dest, MirrorSetupError, url, root=other.to_bytes())


def test_a_source_answering_an_html_page_is_named_as_such(dest: Path, hosts: Hosts) -> None:
    portal = hosts(dest, html=True)

    error = refused(dest, MirrorSourceUnreachableError, portal.url)

    assert error.message == (
        f"{portal.url} answered an HTML page, not TUF metadata (Content-Type text/html; "
        "charset=utf-8; a captive portal or a wrong URL?)"
    )


def test_a_source_redirecting_once_is_followed_and_a_loop_is_named(
    repo: Repository, dest: Path, hosts: Hosts
) -> None:
    loop = hosts(dest)
    loop.behaviour.redirect_to = loop.url
    error = refused(dest, MirrorSourceUnreachableError, loop.url)
    assert f"redirected more than 3 times (last to {loop.url}/metadata/" in error.message

    cdn = hosts(dest, redirect_to=hosts(repo.layout.public_dir).url)
    assert sync_mirror(cdn.url, dest).changed


def test_the_mirror_refuses_a_signed_target_path_with_dot_dot(
    repo: Repository, hosts: Hosts, root_v1: bytes, tmp_path: Path
) -> None:
    sign_release_at(repo, "alpha/../alpha-9.0.img", "9.0")

    with pytest.raises(MirrorMetadataRefusedError) as refused:
        sync_mirror(hosts(repo.layout.public_dir).url, tmp_path / "mirror", root=root_v1)

    assert "unsafe path 'alpha/../alpha-9.0.img' in signed metadata" in refused.value.message
