"""The brakes' read (``fleet.rollouts.due``): which active rollouts call for a change,
in a few statements however many rollouts are active."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import event

from patchline.fleet.rollouts import Brakes, Phase, RolloutSpec, create_rollout, due
from patchline.store.buckets import BUCKETS
from patchline.store.db import Database
from patchline.store.models import Device, Release

STARTED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
NOW = STARTED + timedelta(hours=2)


def _release(model: str, build: str) -> Release:
    return Release(
        target_path=f"{model}/{build}/{model}-{build}.img",
        kind="full",
        model=model,
        build=build,
        length=1024,
        sha256="0" * 64,
        published_at=STARTED,
        allowed_networks=["wifi"],
    )


def _device(n: int, model: str, state: str | None) -> Device:
    return Device(
        id=f"{model}-dev-{n}",
        model=model,
        serial=f"SN-{model}-{n}",
        hardware_id=f"hw-{model}-{n}",
        region="DE",
        deployed_on=date(2025, 1, 1),
        credential_hash=bytes(32),
        enrolled_at=STARTED,
        build="1.0",
        security_patch_level=date(2025, 1, 1),
        assigned_build="2.0",
        install_state=state,
        last_seen_at=NOW,
    )


def _rollout(model: str, min_healthy: int, soak: int = 3600) -> RolloutSpec:
    return RolloutSpec(
        model, "2.0", (Phase(BUCKETS, soak, min_healthy),), brakes=Brakes(min_installs=10)
    )


def test_due_counts_only_rollouts_with_installs(database_url: str) -> None:
    db = Database.connect(database_url)
    try:
        with db.transaction() as session:
            models = [f"idle{i}" for i in range(40)] + ["failing", "soaked", "waiting", "empty"]
            session.add_all(_release(model, "2.0") for model in models)
            session.flush()
            ids = {}
            for model in models:
                # "empty" has no install and needs none: its phase ends once soaked.
                spec = _rollout(model, min_healthy=0 if model == "empty" else 5)
                ids[model] = create_rollout(session, spec, "test", STARTED).id
            # Offered, not installed: not read by the brakes.
            session.add_all(_device(n, f"idle{n % 40}", "offered") for n in range(200))
            failing = ["failed"] * 4 + ["booted-healthy"] * 8  # 4 of 12: over 5 %
            session.add_all(_device(n, "failing", s) for n, s in enumerate(failing))
            session.add_all(_device(n, "soaked", "booted-healthy") for n in range(6))
            # Healthy enough, but 2 of 12 installed and not yet booted: pending.
            waiting = ["booted-healthy"] * 10 + ["installed"] * 2
            session.add_all(_device(n, "waiting", s) for n, s in enumerate(waiting))

        statements: list[str] = []

        def seen(*args: Any) -> None:
            statements.append(args[2])

        event.listen(db.engine, "before_cursor_execute", seen)
        with db.reading_session() as session:
            found = due(session, NOW)
        event.remove(db.engine, "before_cursor_execute", seen)

        assert sorted(found) == sorted([ids["failing"], ids["soaked"], ids["empty"]])
        # One read of the 44 active rollouts (with whether any device installed each
        # one's build), then a count for each of the 3 with installs.
        assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 4

        with db.reading_session() as session:
            assert due(session, STARTED + timedelta(minutes=30)) == [ids["failing"]]
    finally:
        db.dispose()
