"""What the director knows about a device and about the releases it could offer.

Plain values, no database rows: the server builds them from its tables and the
device's check-in; tests build them directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from patchline.errors import InvalidFactsError
from patchline.wire.release import Eligibility, ReleaseInfo, UpdateClass

_SHA256 = re.compile(r"^[0-9a-f]{64}$")

#: The network value that never allows a download, whatever a release says.
OFFLINE = "offline"


@dataclass(frozen=True, kw_only=True)
class DeviceFacts:
    """One device as it checked in: what it runs, where and since when, what it can take.

    ``region`` and ``deployed_on`` are None when unknown; rules that limit by them then
    fail closed (see ``patchline.policy.rules``).
    """

    device_id: str
    model: str
    region: str | None
    deployed_on: date | None
    build: str
    build_sha256: str
    security_patch_level: date
    free_bytes: int
    battery_percent: int
    network: str

    def __post_init__(self) -> None:
        if self.region is not None:
            object.__setattr__(self, "region", self.region.upper())
        object.__setattr__(self, "network", str(self.network).lower())
        _check_sha256(f"device {self.device_id} build_sha256", self.build_sha256)
        if self.free_bytes < 0:
            raise InvalidFactsError(f"device {self.device_id}: free_bytes is negative")
        if not 0 <= self.battery_percent <= 100:
            raise InvalidFactsError(
                f"device {self.device_id}: battery_percent {self.battery_percent} is not 0-100"
            )

    def to_json(self) -> dict[str, Any]:
        """Return the facts as JSON values (dates as YYYY-MM-DD)."""
        return {
            "device_id": self.device_id,
            "model": self.model,
            "region": self.region,
            "deployed_on": self.deployed_on.isoformat() if self.deployed_on else None,
            "build": self.build,
            "build_sha256": self.build_sha256,
            "security_patch_level": self.security_patch_level.isoformat(),
            "free_bytes": self.free_bytes,
            "battery_percent": self.battery_percent,
            "network": self.network,
        }


@dataclass(frozen=True, kw_only=True)
class DeltaFacts:
    """A delta target that turns exactly one source image into a release's image."""

    target_path: str
    source_build: str
    source_sha256: str
    length: int
    sha256: str

    def __post_init__(self) -> None:
        _check_sha256(f"delta {self.target_path} source_sha256", self.source_sha256)
        _check_sha256(f"delta {self.target_path} sha256", self.sha256)
        if self.length < 0:
            raise InvalidFactsError(f"delta {self.target_path}: length is negative")

    def to_json(self) -> dict[str, Any]:
        """Return the delta's facts as JSON values."""
        return {
            "target_path": self.target_path,
            "source_build": self.source_build,
            "source_sha256": self.source_sha256,
            "length": self.length,
            "sha256": self.sha256,
        }


@dataclass(frozen=True, kw_only=True)
class ReleaseFacts:
    """One full image release with its signed fields, phone requirements and deltas.

    ``allowed_networks`` empty means any network but "offline"; ``min_battery_percent``
    0 means no battery requirement.
    """

    target_path: str
    model: str
    build: str
    length: int
    sha256: str
    security_patch_level: date
    update_class: UpdateClass
    eligibility: Eligibility = field(default_factory=Eligibility)
    min_battery_percent: int = 0
    allowed_networks: frozenset[str] = frozenset()
    deltas: tuple[DeltaFacts, ...] = ()

    def __post_init__(self) -> None:
        _check_sha256(f"release {self.target_path} sha256", self.sha256)
        if self.length < 0:
            raise InvalidFactsError(f"release {self.target_path}: length is negative")
        if not 0 <= self.min_battery_percent <= 100:
            raise InvalidFactsError(f"release {self.target_path}: min_battery_percent is not 0-100")
        object.__setattr__(self, "update_class", UpdateClass(self.update_class))
        object.__setattr__(
            self, "allowed_networks", frozenset(str(n).lower() for n in self.allowed_networks)
        )
        object.__setattr__(self, "deltas", tuple(self.deltas))

    @classmethod
    def from_info(
        cls,
        info: ReleaseInfo,
        *,
        target_path: str,
        length: int,
        sha256: str,
        min_battery_percent: int = 0,
        allowed_networks: frozenset[str] = frozenset(),
        deltas: tuple[DeltaFacts, ...] = (),
    ) -> ReleaseFacts:
        """Build the facts from a release's signed custom fields and its target entry."""
        return cls(
            target_path=target_path,
            model=info.model,
            build=info.build,
            length=length,
            sha256=sha256,
            security_patch_level=info.security_patch_level,
            update_class=info.update_class,
            eligibility=info.eligibility,
            min_battery_percent=min_battery_percent,
            allowed_networks=allowed_networks,
            deltas=deltas,
        )

    @property
    def label(self) -> str:
        """The release as a person names it: "build 1.4 (security update)"."""
        return f"build {self.build} ({self.update_class.value} update)"

    def to_json(self) -> dict[str, Any]:
        """Return the release's facts as JSON values."""
        return {
            "target_path": self.target_path,
            "model": self.model,
            "build": self.build,
            "length": self.length,
            "sha256": self.sha256,
            "security_patch_level": self.security_patch_level.isoformat(),
            "update_class": self.update_class.value,
            "eligibility": self.eligibility.to_json(),
            "min_battery_percent": self.min_battery_percent,
            "allowed_networks": sorted(self.allowed_networks),
            "deltas": [d.to_json() for d in self.deltas],
        }


def _check_sha256(what: str, value: str) -> None:
    if not isinstance(value, str) or not _SHA256.match(value):
        raise InvalidFactsError(f"{what} {value!r} is not a sha256 hex digest")
