"""Builders for the policy tests: a device, releases and rules with sensible defaults."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

from patchline.policy import DeltaFacts, DeviceFacts, Effect, ReleaseFacts, Rule
from patchline.wire.release import UpdateClass

MODEL = "aurora"
RUNNING_SHA = hashlib.sha256(b"aurora 1.0").hexdigest()


def sha(text: str) -> str:
    """A stable sha256 hex digest for a label."""
    return hashlib.sha256(text.encode()).hexdigest()


def device(**changes: Any) -> DeviceFacts:
    values: dict[str, Any] = {
        "device_id": "dev-1",
        "model": MODEL,
        "region": "DE",
        "deployed_on": date(2017, 6, 1),
        "build": "1.0",
        "build_sha256": RUNNING_SHA,
        "security_patch_level": date(2018, 3, 1),
        "free_bytes": 10_000_000,
        "battery_percent": 80,
        "network": "wifi",
    }
    values.update(changes)
    return DeviceFacts(**values)


def release(build: str, update_class: str = "security", **changes: Any) -> ReleaseFacts:
    values: dict[str, Any] = {
        "target_path": f"{MODEL}/{build}/{MODEL}-{build}.img",
        "model": MODEL,
        "build": build,
        "length": 1_000_000,
        "sha256": sha(f"{MODEL} {build}"),
        "security_patch_level": date(2018, 3, 5),
        "update_class": UpdateClass(update_class),
    }
    values.update(changes)
    return ReleaseFacts(**values)


def delta(build: str, source_build: str, source_sha256: str, length: int = 50_000) -> DeltaFacts:
    return DeltaFacts(
        target_path=f"{MODEL}/{build}/delta-from-{source_build}.patch",
        source_build=source_build,
        source_sha256=source_sha256,
        length=length,
        sha256=sha(f"delta {source_build} {build} {source_sha256}"),
    )


def allow_all(rule_id: str = "allow-all", priority: int = 10, **changes: Any) -> Rule:
    return Rule(id=rule_id, effect=Effect.ALLOW, priority=priority, **changes)


def block_all(rule_id: str = "block-all", priority: int = 100, **changes: Any) -> Rule:
    return Rule(id=rule_id, effect=Effect.BLOCK, priority=priority, **changes)
