"""Signing what the maker's own keys can sign, to test what the other side refuses."""

from __future__ import annotations

import hashlib
from datetime import date

from tuf.api.metadata import TargetFile

from patchline.repository import Repository
from patchline.wire.release import ReleaseInfo, UpdateClass
from tests.conftest import image_bytes


def sign_release_at(repo: Repository, path: str, build: str) -> tuple[str, bytes]:
    """Sign, with the model key of alpha, a release of ``build`` under the target path
    ``path`` (as a maker's own model key can); return its sha256 and bytes."""
    data = image_bytes(f"alpha/{build}")
    sha256 = hashlib.sha256(data).hexdigest()
    info = ReleaseInfo(
        model="alpha",
        build=build,
        build_time=repo.clock.now().replace(microsecond=0),
        security_patch_level=date(2026, 3, 1),
        update_class=UpdateClass.SECURITY,
    )
    with repo.transaction() as tx:
        tx.edit_model("alpha").targets[path] = TargetFile(
            len(data), {"sha256": sha256}, path, unrecognized_fields={"custom": info.to_custom()}
        )
        tx.commit()
    return sha256, data
