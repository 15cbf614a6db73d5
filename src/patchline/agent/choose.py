"""Choosing what to install from one verified repository: the newest build this device
may take, as a delta when one fits the running image, never older than what runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from tuf.api.metadata import TargetFile

from patchline.agent.device import DeviceConfig
from patchline.agent.state import SlotContent
from patchline.agent.trust import VerifiedSource
from patchline.errors import DirectorRefusedError, DowngradeError, NotEligibleError
from patchline.transport.releases import full_releases
from patchline.wire.builds import build_sort_key
from patchline.wire.director import (
    Action,
    DirectorDecision,
    OfferedRelease,
    agrees_with_image,
)
from patchline.wire.release import (
    DeltaTargetInfo,
    InvalidReleaseInfo,
    ReleaseInfo,
    delta_target_path,
)


@dataclass(frozen=True)
class Plan:
    """What to install: the full image (always known) and, when one fits, a delta."""

    full: TargetFile
    info: ReleaseInfo
    delta: TargetFile | None = None


@dataclass(frozen=True)
class Facts:
    """What the device knows about itself when choosing."""

    config: DeviceConfig
    running: SlotContent
    today: date
    refused_builds: frozenset[str] = frozenset()


def plan_update(
    repo: VerifiedSource, facts: Facts, decision: DirectorDecision | None
) -> Plan | None:
    """The update to install from ``repo``, or None when the device is up to date.

    With a director decision, install exactly its target, once the image repository
    agrees; without one, enforce the signed eligibility here. Either way, refuse a build
    or security patch level below the running one (DowngradeError), and raise
    NotEligibleError or DirectorRefusedError with the reasons when nothing is allowed.
    """
    if decision is not None:
        return _plan_from_decision(repo, facts, decision)
    model = facts.config.model
    releases = full_releases(repo.model_targets(model), model, newest_first=True)
    if not releases:
        return None
    running_key = build_sort_key(facts.running.build)
    newest = releases[0].info
    if build_sort_key(newest.build) < running_key:
        raise DowngradeError(
            f"offers build {newest.build} at most, older than the running {facts.running.build}"
        )
    refusals: list[str] = []
    for release in releases:
        info = release.info
        if build_sort_key(info.build) <= running_key:
            break
        reasons = _refusals(info, facts)
        if not reasons:
            return Plan(release.target, info, _delta_for(repo, facts, info, release.target))
        refusals.append(f"build {info.build}: {'; '.join(reasons)}")
    if refusals:
        error = DowngradeError if all("patch level" in r for r in refusals) else NotEligibleError
        raise error(f"offers nothing this device may install ({' / '.join(refusals)})")
    return None


def _refusals(info: ReleaseInfo, facts: Facts) -> list[str]:
    reasons = _downgrade_reasons(info, facts)
    if info.build in facts.refused_builds:
        reasons.append("failed its health check on this device before")
    if info.update_class.value not in facts.config.accept_classes:
        reasons.append(f"{info.update_class.value} updates are turned off on this device")
    deployed = date.fromisoformat(facts.config.deployed_on) if facts.config.deployed_on else None
    reasons += info.eligibility.refusals(
        region=facts.config.region, deployed_on=deployed, today=facts.today
    )
    return reasons


def _downgrade_reasons(info: ReleaseInfo, facts: Facts) -> list[str]:
    reasons = []
    if build_sort_key(info.build) <= build_sort_key(facts.running.build):
        reasons.append(f"build {info.build} is not newer than the running {facts.running.build}")
    running_spl = date.fromisoformat(facts.running.security_patch_level)
    if info.security_patch_level < running_spl:
        reasons.append(
            f"security patch level {info.security_patch_level} is below the running {running_spl}"
        )
    return reasons


def _plan_from_decision(
    repo: VerifiedSource, facts: Facts, decision: DirectorDecision
) -> Plan | None:
    if decision.action is Action.NONE or decision.target is None:
        return None
    image = repo.lookup(decision.target.path)
    if image is None:
        raise DirectorRefusedError(
            f"the director names {decision.target.path}, which this repository does not sign"
        )
    if not agrees_with_image(decision.target, image):
        raise DirectorRefusedError(
            f"the director and the image repository disagree on {image.path} (length or hash)"
        )
    kind = image.custom.get("kind") if "custom" in image.unrecognized_fields else None
    delta: TargetFile | None = None
    full = image
    if kind == "delta":
        delta_info = DeltaTargetInfo.from_custom(image.custom)
        found = repo.lookup(decision.full_target or delta_info.full_target)
        if found is None:
            raise DirectorRefusedError(f"the full image of {image.path} is not signed")
        full, delta = found, image
    try:
        info = ReleaseInfo.from_custom(full.custom)
    except InvalidReleaseInfo as exc:
        raise DirectorRefusedError(f"{full.path} is not a release: {exc}") from None
    if info.model != facts.config.model:
        raise DirectorRefusedError(f"{full.path} is for model {info.model}, not this device")
    _check_offered(decision.release, image, full, info)
    reasons = _downgrade_reasons(info, facts)
    if reasons:
        raise DowngradeError("; ".join(reasons))
    if delta is not None and not _delta_fits(delta, facts, full):
        delta = None
    return Plan(full, info, delta)


def _check_offered(
    offered: OfferedRelease | None, image: TargetFile, full: TargetFile, info: ReleaseInfo
) -> None:
    """Refuse an answer whose statement of what it installs differs from the image
    repository's entry (or is missing): build, patch level, class, full image."""
    if offered is None:
        raise DirectorRefusedError(
            f"the director names {image.path} but not the build it installs",
            hint="the server is older than this agent or altered; the answer is refused",
        )
    mismatches = []
    if offered.build != info.build:
        mismatches.append(f"build {offered.build} (signed: {info.build})")
    if offered.security_patch_level != info.security_patch_level.isoformat():
        mismatches.append(
            f"security patch level {offered.security_patch_level} "
            f"(signed: {info.security_patch_level.isoformat()})"
        )
    if offered.update_class != info.update_class.value:
        mismatches.append(
            f"update class {offered.update_class} (signed: {info.update_class.value})"
        )
    named = offered.full
    if (named.path, named.length, named.sha256) != (
        full.path,
        full.length,
        full.hashes.get("sha256"),
    ):
        mismatches.append(
            f"full image {named.path} ({named.length} bytes, sha256 {named.sha256[:12]}...) "
            f"(signed: {full.path}, {full.length} bytes)"
        )
    if mismatches:
        raise DirectorRefusedError(
            f"the director and the image repository disagree on what {image.path} installs: "
            + "; ".join(mismatches)
        )


def _delta_for(
    repo: VerifiedSource, facts: Facts, info: ReleaseInfo, full: TargetFile
) -> TargetFile | None:
    path = delta_target_path(info.model, info.build, facts.running.build)
    delta = repo.lookup(path)
    if delta is None or not _delta_fits(delta, facts, full):
        return None
    return delta


def _delta_fits(delta: TargetFile, facts: Facts, full: TargetFile) -> bool:
    try:
        info = DeltaTargetInfo.from_custom(delta.custom)
    except InvalidReleaseInfo:
        return False
    return (
        info.source_sha256 == facts.running.sha256
        and info.full_sha256 == full.hashes.get("sha256")
        and info.full_length == full.length
    )
