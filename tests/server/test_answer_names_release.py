"""An install answer says what it installs (build, patch level, update class, the full
image a delta produces), signed by the director; the agent checks each against the image
repository and refuses an answer that disagrees, as it does for the target's length and
hash."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update

from patchline.agent import Agent, DeviceDir
from patchline.agent.enrollment import enroll as agent_enroll
from patchline.agent.state import load_state
from patchline.clock import SystemClock
from patchline.director.identity import director_root_path
from patchline.director.releases_sync import bump_catalog
from patchline.errors import UpdateRefusedError
from patchline.store.db import Database
from patchline.store.models import Release
from patchline.transport.http import http_pool
from patchline.wire.director import verify_decision
from tests.agent.conftest import hosts, make_device  # noqa: F401  (fixtures, shared)
from tests.conftest import image_bytes
from tests.server.conftest import ENROLLMENT_TOKEN, RunningServer
from tests.server.test_device_flow import (
    ALLOW_ALL,
    check_in,
    director_root,
    enroll,
    publish_via_repo,
)

FULL_1_1 = "alpha/1.1/alpha-1.1.img"


def _change_release(server: RunningServer, target_path: str, **values: Any) -> None:
    """Change what the server's database says of a release (as a damaged or altered
    database would), and have every process reload it."""
    db = Database.connect(server.database_url)
    try:
        with db.transaction() as session:
            session.execute(
                update(Release).where(Release.target_path == target_path).values(**values)
            )
            bump_catalog(session)
    finally:
        db.dispose()
    server.api().post("/api/releases/sync")  # reloads the catalog in the serving process


def _agent_device(
    make_device: Callable[..., DeviceDir],  # noqa: F811
    server: RunningServer,
    serial: str,
) -> DeviceDir:
    device = make_device(serial, region="DE", deployed_on="2026-01-10", server_url=server.url)
    device.director_root.write_bytes(director_root_path(server.home).read_bytes())
    agent_enroll(
        device, http_pool(2, 10), token=ENROLLMENT_TOKEN, serial=serial, hardware_id=f"hw-{serial}"
    )
    return device


def test_the_signed_answer_names_the_build_its_class_patch_level_and_full_image(
    server: RunningServer,
) -> None:
    server.api().post("/api/policies", json=ALLOW_ALL)
    publish_via_repo(server)
    device_id, credential = enroll(server, "SN-N1")
    answer = check_in(server, credential).json()
    decision = verify_decision(
        director_root(server), answer["director"], device_id=device_id, now=datetime.now(UTC)
    )
    assert decision.target is not None
    assert decision.target.path == "alpha/1.1/delta-from-1.0.patch"
    release = decision.release
    assert release is not None
    assert (release.build, release.security_patch_level, release.update_class) == (
        "1.1",
        "2026-02-01",
        "security",
    )
    listed = {r["target_path"]: r for r in server.api().get("/api/releases").json()}
    full = listed[FULL_1_1]
    assert (release.full.path, release.full.length, release.full.sha256) == (
        FULL_1_1,
        full["length"],
        full["sha256"],
    )


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"update_class": "functional"}, "update class functional (signed: security)"),
        ({"security_patch_level": datetime(2026, 3, 1).date()}, "patch level 2026-03-01"),
        ({"build": "1.2"}, "build 1.2 (signed: 1.1)"),
        ({"sha256": "0" * 64}, f"full image {FULL_1_1}"),
    ],
    ids=["class", "patch-level", "build", "full-image"],
)
def test_the_agent_refuses_an_answer_that_misstates_what_it_installs(
    server: RunningServer,
    make_device: Callable[..., DeviceDir],  # noqa: F811
    change: dict[str, Any],
    refusal: str,
) -> None:
    server.api().post("/api/policies", json=ALLOW_ALL)
    publish_via_repo(server)
    device = _agent_device(make_device, server, "SN-N2")
    _change_release(server, FULL_1_1, **change)

    with pytest.raises(UpdateRefusedError, match="disagree on what") as refused:
        Agent(device, clock=SystemClock()).update()
    assert refusal in refused.value.message
    assert load_state(device).running.build == "1.0"

    # The database put right, the same device installs the same update.
    _change_release(
        server,
        FULL_1_1,
        update_class="security",
        security_patch_level=datetime(2026, 2, 1).date(),
        build="1.1",
        sha256=hashlib.sha256(image_bytes("alpha/1.1")).hexdigest(),
    )
    assert Agent(device, clock=SystemClock()).update().build == "1.1"
