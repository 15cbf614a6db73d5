"""What an update run tried and how it ended, in words a person understands."""

from __future__ import annotations

from dataclasses import dataclass, field

from patchline.errors import (
    DirectorRefusedError,
    DowngradeError,
    EndlessDataError,
    InstallFailedError,
    MetadataRefusedError,
    NoBundleError,
    NotEligibleError,
    NoUpdateSourceError,
    PatchlineError,
    SourceError,
    TargetRefusedError,
    UpdateRefusedError,
)
from patchline.wire.device_api import ReportCode


@dataclass(frozen=True)
class Attempt:
    """One source tried, and why it did not deliver (or what it delivered)."""

    source: str
    reason: str
    code: ReportCode
    #: True when the source verified and offered an update that was then refused.
    offered: bool = False


@dataclass(frozen=True)
class UpdateResult:
    """How a successful run ended: a new build running, or nothing to do."""

    status: str  # "installed" or "up-to-date"
    build: str
    message: str
    attempts: tuple[Attempt, ...] = field(default_factory=tuple)
    source: str = ""


def code_for(exc: PatchlineError) -> ReportCode:
    """The report code for a failure, mirroring update_engine's error codes."""
    if isinstance(exc, EndlessDataError):
        return ReportCode.DOWNLOAD_ERROR
    if isinstance(exc, TargetRefusedError):
        return ReportCode.HASH_MISMATCH
    if isinstance(exc, MetadataRefusedError | DirectorRefusedError):
        return ReportCode.METADATA_ERROR
    if isinstance(exc, NotEligibleError):
        return ReportCode.NOT_ELIGIBLE
    if isinstance(exc, DowngradeError):
        return ReportCode.DOWNGRADE
    if isinstance(exc, NoBundleError):
        return ReportCode.NO_SOURCE
    if isinstance(exc, InstallFailedError):
        return ReportCode.NOT_ENOUGH_SPACE
    if isinstance(exc, SourceError):
        return ReportCode.DOWNLOAD_ERROR
    return ReportCode.DEVICE_CORRUPTED


def tried(attempts: list[Attempt]) -> str:
    """``Label: reason.`` for every attempt, in order."""
    return " ".join(f"{a.source}: {_sentence(a.reason)}" for a in attempts)


def nothing_installed(attempts: list[Attempt], model: str, build: str, spl: str) -> PatchlineError:
    """The error for a run where no source delivered an installable update."""
    keeps = f"The device keeps running build {build} (security patch level {spl})."
    if any(a.offered for a in attempts):
        return UpdateRefusedError(
            f"An update was found but refused. {tried(attempts)} {keeps}",
            hint="nothing unsafe was installed; try again later or from another source, "
            "and tell the maker if a source keeps serving refused updates",
        )
    if not attempts:
        return NoUpdateSourceError(
            f"No update source is configured. {keeps}",
            hint="add a mirror or a server to device.json, or insert an SD card with a bundle",
        )
    clock_hint = (
        "check the device's date and time; " if any("expired" in a.reason for a in attempts) else ""
    )
    return NoUpdateSourceError(
        f"No update source reachable. {tried(attempts)} {keeps}",
        hint=f"{clock_hint}connect to a network, or insert an SD card or USB stick holding an "
        f"update bundle for model {model}; then try again",
    )


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."
