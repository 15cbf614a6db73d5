"""Which devices a staged rollout reaches: a selection, and a stable bucket per device.

A device's bucket is ``sha256("ROLLOUT-ID:DEVICE-ID")``'s first four bytes, big-endian,
modulo 10,000. A phase covering ``share`` basis points (1 % = 100) reaches the devices of
the selection whose bucket is below it, so widening a phase only adds devices, and every
server process gives the same answer. A rollout may name a stepping stone: a device it
reaches that runs an older build is offered the stepping stone first (also once the
rollout completed). Pure: no database, no clock (``patchline.store.buckets`` holds the
hash, and its SQL form for counting a cohort in the database).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from patchline.policy.facts import ReleaseFacts
from patchline.store.buckets import BUCKETS as BUCKETS
from patchline.store.buckets import bucket as bucket
from patchline.wire.builds import build_sort_key, is_newer_build

T = TypeVar("T")

#: Rollout states. Only ``active`` offers the build (to the current phase's cohort);
#: ``completed`` no longer holds it back from anyone.
ACTIVE = "active"
PAUSED = "paused"
HALTED = "halted"
ABORTED = "aborted"
COMPLETED = "completed"
STATES = (ACTIVE, PAUSED, HALTED, ABORTED, COMPLETED)


def percent(share: int) -> str:
    """A share in basis points as a percentage for a sentence: 10 -> "0.1 %"."""
    return f"{share / 100:g} %"


@dataclass(frozen=True)
class Subject:
    """What a rollout's selection looks at in one device. ``build`` and ``patch_level``
    are None where they are not known (listing a cohort from the enrolled devices):
    those criteria are then left to the check-in. A device that is not ``enrolled`` (one
    reading an update feed, known by nothing but its model and build) is in no rollout."""

    device_id: str
    region: str | None
    carrier: str
    deployed_on: date | None
    build: str | None = None
    patch_level: date | None = None
    enrolled: bool = True


@dataclass(frozen=True)
class Selection:
    """The devices a rollout may reach; every field given must match (none: all devices
    of the release's model). ``groups`` names device groups: a device in any of them
    matches; their members are resolved where the selection is applied."""

    regions: tuple[str, ...] = ()
    carriers: tuple[str, ...] = ()
    builds: tuple[str, ...] = ()
    patch_level_from: date | None = None
    patch_level_to: date | None = None
    deployed_from: date | None = None
    deployed_to: date | None = None
    groups: tuple[str, ...] = ()
    device_ids: frozenset[str] = field(default_factory=frozenset)

    def mismatch(self, device: Subject, group_members: frozenset[str]) -> str | None:
        """Why the device is outside the selection, or None when it is inside;
        ``group_members`` are the devices of the selection's groups."""
        if self.device_ids and device.device_id not in self.device_ids:
            return "the device is not in its list of devices"
        if self.groups and device.device_id not in group_members:
            return f"the device is in none of the groups {', '.join(self.groups)}"
        if self.regions and device.region not in self.regions:
            return f"region {device.region} is not one of {', '.join(self.regions)}"
        if self.carriers and device.carrier not in self.carriers:
            return f"carrier {device.carrier or '(none)'} is not one of {', '.join(self.carriers)}"
        deployed_on = device.deployed_on
        if self.deployed_from and (deployed_on is None or deployed_on < self.deployed_from):
            return f"deployed {deployed_on} is before {self.deployed_from}"
        if self.deployed_to and (deployed_on is None or deployed_on > self.deployed_to):
            return f"deployed {deployed_on} is after {self.deployed_to}"
        build, patch_level = device.build, device.patch_level
        if build is not None and self.builds and build not in self.builds:
            return f"build {build} is not one of {', '.join(self.builds)}"
        if patch_level is not None:
            if self.patch_level_from and patch_level < self.patch_level_from:
                return f"patch level {patch_level} is before {self.patch_level_from}"
            if self.patch_level_to and patch_level > self.patch_level_to:
                return f"patch level {patch_level} is after {self.patch_level_to}"
        return None

    def to_json(self) -> dict[str, Any]:
        """The selection as JSON values (only the fields given)."""
        out: dict[str, Any] = {}
        for name in ("regions", "carriers", "groups"):
            if getattr(self, name):
                out[name] = list(getattr(self, name))
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
            carriers=tuple(data.get("carriers", ())),
            groups=tuple(data.get("groups", ())),
            builds=tuple(data.get("builds", ())),
            patch_level_from=day("patch_level_from"),
            patch_level_to=day("patch_level_to"),
            deployed_from=day("deployed_from"),
            deployed_to=day("deployed_to"),
            device_ids=frozenset(data.get("device_ids", ())),
        )


@dataclass(frozen=True)
class RolloutView:
    """What the director needs of one rollout: its release, state, phase and selection,
    the members of the selection's groups, and the stepping stone if any."""

    id: str
    model: str
    build: str
    state: str
    phase: int  # 0-based index of the current phase
    shares: tuple[int, ...]  # basis points per phase
    selection: Selection
    group_members: frozenset[str] = field(default_factory=frozenset)
    stepping_stone: str | None = None

    @property
    def share(self) -> int:
        """The current phase's share in basis points."""
        return self.shares[self.phase]

    @property
    def name(self) -> str:
        """ "rollout R-3 of phone-a 1.2"."""
        return f"rollout {self.id} of {self.model} {self.build}"

    def where(self) -> str:
        """ "phase 2 of 5, 1 %"."""
        return f"phase {self.phase + 1} of {len(self.shares)}, {percent(self.share)}"

    def verdict(self, device: Subject) -> tuple[bool, str | None]:
        """Whether the rollout lets its build be offered to this device now, and the
        sentence that says so (None for a completed rollout: it holds nobody back)."""
        if self.state == COMPLETED:
            return True, None
        if self.state != ACTIVE:
            return False, f"{self.name} is {self.state}: no device is offered it now"
        if not device.enrolled:
            return False, f"{self.name} reaches enrolled devices only: not offered here"
        outside = self.selection.mismatch(device, self.group_members)
        if outside is not None:
            return False, f"not selected by {self.name}: {outside}"
        if bucket(self.id, device.device_id) < self.share:
            return True, f"in {self.name}, {self.where()}"
        return False, (
            f"not yet reached by {self.name}: phase {self.phase + 1} of {len(self.shares)} "
            f"covers {percent(self.share)}"
        )

    def stone_first(self, build: str) -> str | None:
        """When a device on ``build`` must install the stepping stone before this
        rollout's build, the sentence that says so; else None."""
        stone = self.stepping_stone
        if stone is None or not is_newer_build(stone, build):
            return None
        return (
            f"{self.name} requires build {stone} first: this device runs {build}, "
            f"so it is offered {stone} or older before {self.build}"
        )


@dataclass(frozen=True)
class Gated:
    """What the rollouts let through: the releases held back from the device (target
    paths) and the sentences that say why, or that the device is in a rollout."""

    held: frozenset[str]
    notes: tuple[str, ...]


def apply_rollouts(
    device: Subject,
    model: str,
    rollouts: Mapping[tuple[str, str], RolloutView],
    releases: Iterable[ReleaseFacts],
    choose: Callable[[frozenset[str]], T],
    chosen: Callable[[T], ReleaseFacts | None],
) -> tuple[T, Gated]:
    """The decision once rollouts have had their say. ``choose(held)`` decides with the
    releases ``held`` left out; ``chosen`` tells which release a decision offers. While
    the release chosen is under a rollout that does not reach the device (or whose
    stepping stone the device has not passed, which holds back every release newer than
    the stone), it is held back and the device decided again."""
    result = choose(frozenset())
    if not rollouts:
        return result, Gated(frozenset(), ())
    held: set[str] = set()
    notes: list[str] = []
    while (release := chosen(result)) is not None:
        view = rollouts.get((model, release.build))
        if view is None:
            break
        reached, sentence = view.verdict(device)
        if sentence is not None:
            notes.append(sentence)
        stone = view.stone_first(device.build) if reached and device.build else None
        if reached and stone is None:
            break
        if stone is not None and view.stepping_stone is not None:
            notes.append(stone)
            past = view.stepping_stone
            held.update(r.target_path for r in releases if is_newer_build(r.build, past))
        held.add(release.target_path)
        result = choose(frozenset(held))
    return result, Gated(frozenset(held), tuple(notes))
