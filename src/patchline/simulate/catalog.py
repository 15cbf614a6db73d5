"""The signed releases a simulated fleet runs and is offered, as the server lists them
(``GET /api/releases``): the image hash a device on a build reports, the build a target
installs, and each model's factory build (its oldest signed full build)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from patchline.errors import UsageError
from patchline.wire.builds import is_newer_build


@dataclass(frozen=True)
class Build:
    """One signed full build of one model."""

    model: str
    build: str
    sha256: str
    security_patch_level: str


@dataclass(frozen=True)
class Catalog:
    """Builds by (model, build), the build each target path installs, factory builds."""

    builds: dict[tuple[str, str], Build]
    targets: dict[str, Build]
    factory: dict[str, Build]

    @classmethod
    def from_releases(cls, releases: list[dict[str, Any]]) -> Catalog:
        """Read the server's release listing; UsageError when no model has a full build."""
        builds: dict[tuple[str, str], Build] = {}
        for row in releases:
            if row["kind"] == "full" and not row.get("yanked_at"):
                build = Build(
                    row["model"], row["build"], row["sha256"], row["security_patch_level"]
                )
                builds[(build.model, build.build)] = build
        targets = {
            row["target_path"]: builds[(row["model"], row["build"])]
            for row in releases
            if (row["model"], row["build"]) in builds
        }
        factory: dict[str, Build] = {}
        for build in builds.values():
            oldest = factory.get(build.model)
            if oldest is None or is_newer_build(oldest.build, build.build):
                factory[build.model] = build
        if not factory:
            raise UsageError(
                "the server lists no signed full build to simulate",
                hint="sign a release for each model the fleet should hold",
            )
        return cls(builds, targets, dict(sorted(factory.items())))

    @property
    def models(self) -> list[str]:
        """The models with a factory build, by name."""
        return list(self.factory)
