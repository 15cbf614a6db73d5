"""Which devices a staged rollout reaches: a selection, and a stable bucket per device.

A device's bucket is ``sha256("ROLLOUT-ID:DEVICE-ID")``'s first four bytes, big-endian,
modulo 10,000. A phase covering ``share`` basis points (1 % = 100) reaches the devices of
the selection whose bucket is below it, so widening a phase only adds devices, and every
server process gives the same answer. Pure: no database, no clock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from patchline.wire.builds import build_sort_key

#: Buckets a device can fall in; a phase's share is a number of them (basis points).
BUCKETS = 10_000

#: Rollout states. Only ``active`` offers the build (to the current phase's cohort);
#: ``completed`` no longer holds it back from anyone.
ACTIVE = "active"
PAUSED = "paused"
HALTED = "halted"
ABORTED = "aborted"
COMPLETED = "completed"
STATES = (ACTIVE, PAUSED, HALTED, ABORTED, COMPLETED)


def bucket(rollout_id: str, device_id: str) -> int:
    """The device's bucket in the rollout, 0..9999; the same in every process, forever."""
    digest = hashlib.sha256(f"{rollout_id}:{device_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % BUCKETS


def percent(share: int) -> str:
    """A share in basis points as a percentage for a sentence: 10 -> "0.1 %"."""
    return f"{share / 100:g} %"


@dataclass(frozen=True)
class Selection:
    """The devices a rollout may reach; every field given must match (none: all devices
    of the release's model)."""

    regions: tuple[str, ...] = ()
    builds: tuple[str, ...] = ()
    patch_level_from: date | None = None
    patch_level_to: date | None = None
    deployed_from: date | None = None
    deployed_to: date | None = None
    device_ids: frozenset[str] = field(default_factory=frozenset)

    def mismatch(
        self,
        device_id: str,
        region: str | None,
        build: str,
        patch_level: date,
        deployed_on: date | None,
    ) -> str | None:
        """Why the device is outside the selection, or None when it is inside."""
        if self.device_ids and device_id not in self.device_ids:
            return "the device is not in its list of devices"
        if self.regions and region not in self.regions:
            return f"region {region} is not one of {', '.join(self.regions)}"
        if self.builds and build not in self.builds:
            return f"build {build} is not one of {', '.join(self.builds)}"
        if self.patch_level_from and patch_level < self.patch_level_from:
            return f"patch level {patch_level} is before {self.patch_level_from}"
        if self.patch_level_to and patch_level > self.patch_level_to:
            return f"patch level {patch_level} is after {self.patch_level_to}"
        if self.deployed_from and (deployed_on is None or deployed_on < self.deployed_from):
            return f"deployed {deployed_on} is before {self.deployed_from}"
        if self.deployed_to and (deployed_on is None or deployed_on > self.deployed_to):
            return f"deployed {deployed_on} is after {self.deployed_to}"
        return None

    def to_json(self) -> dict[str, Any]:
        """The selection as JSON values (only the fields given)."""
        out: dict[str, Any] = {}
        if self.regions:
            out["regions"] = list(self.regions)
        if self.builds:
            out["builds"] = sorted(self.builds, key=build_sort_key)
        for name in ("patch_level_from", "patch_level_to", "deployed_from", "deployed_to"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.isoformat()
        if self.device_ids:
            out["device_ids"] = sorted(self.device_ids)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Selection:
        """Read a selection written by ``to_json``."""

        def day(name: str) -> date | None:
            value = data.get(name)
            return date.fromisoformat(value) if value else None

        return cls(
            regions=tuple(data.get("regions", ())),
            builds=tuple(data.get("builds", ())),
            patch_level_from=day("patch_level_from"),
            patch_level_to=day("patch_level_to"),
            deployed_from=day("deployed_from"),
            deployed_to=day("deployed_to"),
            device_ids=frozenset(data.get("device_ids", ())),
        )


@dataclass(frozen=True)
class RolloutView:
    """What the director needs of one rollout: its release, state, phase and selection."""

    id: str
    model: str
    build: str
    state: str
    phase: int  # 0-based index of the current phase
    shares: tuple[int, ...]  # basis points per phase
    selection: Selection

    @property
    def share(self) -> int:
        """The current phase's share in basis points."""
        return self.shares[self.phase]

    def where(self) -> str:
        """ "phase 2 of 5, 1 %"."""
        return f"phase {self.phase + 1} of {len(self.shares)}, {percent(self.share)}"

    def verdict(
        self,
        device_id: str,
        region: str | None,
        build: str,
        patch_level: date,
        deployed_on: date | None,
    ) -> tuple[bool, str]:
        """Whether the rollout offers its build to this device now, and the sentence
        that says so."""
        name = f"rollout {self.id} of {self.model} {self.build}"
        if self.state != ACTIVE:
            return False, f"{name} is {self.state}: no device is offered it now"
        outside = self.selection.mismatch(device_id, region, build, patch_level, deployed_on)
        if outside is not None:
            return False, f"not selected by {name}: {outside}"
        if bucket(self.id, device_id) < self.share:
            return True, f"in {name}, {self.where()}"
        return False, (
            f"not yet reached by {name}: phase {self.phase + 1} of {len(self.shares)} "
            f"covers {percent(self.share)}"
        )
