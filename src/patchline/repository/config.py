"""A repository's settings, kept in ``patchline.toml`` beside the public tree."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

from patchline.errors import ConfigError, UsageError
from patchline.fsutil import write_atomic

_DURATION = re.compile(r"^(\d+)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
TOP_LEVEL_ROLES = ("root", "targets", "snapshot", "timestamp")


def parse_duration(text: str) -> timedelta:
    """Parse ``30d``, ``12h`` or ``90m`` into a positive timedelta."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise UsageError(
            f"duration {text!r} is not valid", hint="write a whole number and d, h or m: 7d, 12h"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def format_duration(value: timedelta) -> str:
    """Write a timedelta in the form ``parse_duration`` reads."""
    minutes = int(value.total_seconds()) // 60
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


@dataclass(frozen=True)
class Expiries:
    """How long each role's signature stays valid after signing."""

    root: timedelta = timedelta(days=365)
    targets: timedelta = timedelta(days=90)
    models: timedelta = timedelta(days=90)
    snapshot: timedelta = timedelta(days=7)
    timestamp: timedelta = timedelta(days=1)
    #: The offline-bundle role: how long an exported SD card / USB bundle stays valid.
    offline: timedelta = timedelta(days=180)

    def for_role(self, role: str) -> timedelta:
        """The validity period of a top-level role, or of a model role for any other name."""
        if role in TOP_LEVEL_ROLES:
            period: timedelta = getattr(self, role)
            return period
        return self.models

    def with_overrides(self, overrides: dict[str, str]) -> Expiries:
        """Return a copy with some periods replaced (``{"timestamp": "12h"}``)."""
        values: dict[str, timedelta] = {}
        for name, text in overrides.items():
            if name not in (*TOP_LEVEL_ROLES, "models", "offline"):
                raise UsageError(
                    f"no role named {name!r} has an expiry",
                    hint="use root, targets, models, snapshot, timestamp or offline",
                )
            values[name] = parse_duration(text)
        result = replace(self, **values)
        if result.timestamp > result.snapshot:
            raise UsageError("the timestamp must not outlive the snapshot it names")
        return result


@dataclass(frozen=True)
class RepositoryConfig:
    """Settings of one repository."""

    keys_dir: Path
    expiries: Expiries = field(default_factory=Expiries)
    root_threshold: int = 2
    #: Builds per model kept in the model's role, which every refresh of a device of
    #: that model downloads; older builds move to the model's archive role.
    current_builds: int = 8
    #: A new release gets a delta from each of the model's newest this-many builds.
    delta_sources: int = 2
    #: A model's archive is split into 2**archive_bin_bits hash bins (TUF succinct
    #: delegation); fixed when the archive is first split (at ``model add``, or at an
    #: older archive's next change).
    archive_bin_bits: int = 4
    #: Metadata named by any of the newest this-many snapshots is kept on disk (older
    #: versions are removed), for clients in the middle of a refresh when a publication
    #: lands. Root versions are always kept.
    kept_snapshots: int = 64

    def save(self, path: Path) -> None:
        """Write the settings file atomically."""
        keys_dir = self.keys_dir.absolute()  # a relative path means from the current folder
        if keys_dir.is_relative_to(path.parent.absolute()):
            keys_dir = keys_dir.relative_to(path.parent.absolute())
        lines = [
            "# Patchline repository settings.",
            "[repository]",
            f"keys_dir = {_toml_string(str(keys_dir))}",
            f"root_threshold = {self.root_threshold}",
            "# Builds per model that devices see on every refresh; older ones are archived.",
            f"current_builds = {self.current_builds}",
            "# Deltas built for a new release: from each of this many newest builds (0: none).",
            f"delta_sources = {self.delta_sources}",
            "# Each model's archive is split into 2**archive_bin_bits hash bins.",
            f"archive_bin_bits = {self.archive_bin_bits}",
            "# Metadata the newest this-many snapshots name is kept (for clients mid-refresh).",
            f"kept_snapshots = {self.kept_snapshots}",
            "",
            "# How long each role's signatures stay valid: whole numbers of d, h or m.",
            "[expiry]",
        ]
        for role in (*TOP_LEVEL_ROLES, "models", "offline"):
            lines.append(f'{role} = "{format_duration(getattr(self.expiries, role))}"')
        write_atomic(path, ("\n".join(lines) + "\n").encode())

    @classmethod
    def load(cls, path: Path) -> RepositoryConfig:
        """Read the settings file; relative ``keys_dir`` is taken from the file's folder."""
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        section = data.get("repository", {})
        keys_dir = Path(str(section.get("keys_dir", "keys")))
        if not keys_dir.is_absolute():
            keys_dir = path.parent / keys_dir
        try:
            expiries = Expiries().with_overrides(
                {str(k): str(v) for k, v in data.get("expiry", {}).items()}
            )
            threshold = int(section.get("root_threshold", 2))
            current_builds = int(section.get("current_builds", 8))
            delta_sources = int(section.get("delta_sources", 2))
            bin_bits = int(section.get("archive_bin_bits", 4))
            kept = int(section.get("kept_snapshots", 64))
        except (UsageError, ValueError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        if current_builds < 1:
            raise ConfigError(f"{path}: current_builds must be at least 1")
        if delta_sources < 0:
            raise ConfigError(f"{path}: delta_sources must not be negative")
        if not 1 <= bin_bits <= 8:
            raise ConfigError(f"{path}: archive_bin_bits must be from 1 to 8")
        if kept < 1:
            raise ConfigError(f"{path}: kept_snapshots must be at least 1")
        return cls(
            keys_dir=keys_dir,
            expiries=expiries,
            root_threshold=threshold,
            current_builds=current_builds,
            delta_sources=delta_sources,
            archive_bin_bits=bin_bits,
            kept_snapshots=kept,
        )


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
