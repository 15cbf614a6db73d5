"""The director: a decision per device, cached per cohort, signed per device, cached
while it does not change.

Decisions depend only on a device's cohort (model, build and hash, patch level,
region, deployment date, phone state, the day) and the catalog, so they are computed
once per cohort. The signed answer names the device (Uptane), so it is signed per
device, but only when the device's decision changes or half its validity has passed:
a steady fleet polling costs no signatures.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from securesystemslib.signer import Signer
from tuf.api.metadata import TargetFile
from tuf.api.serialization.json import JSONSerializer

from patchline.bounded_cache import BoundedCache
from patchline.director.catalog import Catalog
from patchline.director.rollout_gate import Subject, apply_rollouts
from patchline.policy.decide import Action as DecisionAction
from patchline.policy.decide import Decision, cohort_key, decide, decision_digest
from patchline.policy.evaluate import phone_ready
from patchline.policy.facts import DeviceFacts, ReleaseFacts
from patchline.wire.builds import is_newer_build
from patchline.wire.director import Action, OfferedImage, OfferedRelease, sign_decision

_COMPACT = JSONSerializer(compact=True)


@dataclass
class SignedAnswer:
    """A device's signed decision, kept while the decision holds."""

    digest: str
    body: bytes
    version: int
    expires: datetime
    signed_at: datetime


_ANY_SPACE = 2**62


@dataclass(slots=True)
class _DeviceRecord:
    """What the director keeps of one device: its last signed answer, and its last
    decision with what it was decided on (the cohort key, the carrier) and the releases
    whose phone checks it passed (release, download length)."""

    answer: SignedAnswer | None = None
    key: tuple[Any, ...] | None = None
    carrier: str = ""
    decided: tuple[Decision, str] | None = None
    ready_for: tuple[tuple[ReleaseFacts, int], ...] = ()

    def still_ready(self, free_bytes: int, battery_percent: int, network: str) -> bool:
        """Whether a phone in this state passes every check the kept decision needed."""
        for release, length in self.ready_for:
            if not phone_ready(free_bytes, battery_percent, network, release, length):
                return False
        return True


class Director:
    """Decides and signs; holds the catalog and the caches of one server process."""

    def __init__(
        self,
        signer: Signer,
        *,
        mirrors: list[str],
        poll_after_seconds: int,
        validity: timedelta,
        cohort_cache_size: int = 100_000,
        answer_cache_size: int = 500_000,
    ) -> None:
        self._signer = signer
        self._validity = validity
        self._half_validity = validity / 2
        self._tail = (
            b',"mirrors":'
            + json.dumps(mirrors).encode()
            + b',"poll_after_seconds":'
            + str(poll_after_seconds).encode()
            + b"}"
        )
        self.catalog = Catalog()
        self._decisions: BoundedCache[Any, tuple[Decision, str]] = BoundedCache(cohort_cache_size)
        self._cohorts: BoundedCache[Any, tuple[Decision, str]] = BoundedCache(cohort_cache_size)
        self._devices: BoundedCache[str, _DeviceRecord] = BoundedCache(answer_cache_size)
        #: A decision with rollout sentences added, by (its digest, the sentences).
        self._gated: BoundedCache[Any, tuple[Decision, str]] = BoundedCache(cohort_cache_size)
        self.signatures = 0

    @property
    def answer_cache_capacity(self) -> int:
        """The most devices whose last signed answer this director keeps."""
        return self._devices.capacity

    def use_catalog(self, catalog: Catalog) -> None:
        """Switch to a new catalog; cached decisions of the old one are dropped."""
        self.catalog = catalog
        self._decisions.clear()
        self._cohorts.clear()
        self._gated.clear()

    def decide(
        self,
        *,
        model: str,
        region: str | None,
        deployed_on: date | None,
        build: str,
        build_sha256: str,
        security_patch_level: str,
        free_bytes: int,
        battery_percent: int,
        network: str,
        now: datetime,
        failed_builds: Mapping[str, str] | None = None,
        device_id: str | None = None,
        carrier: str = "",
        unidentified: bool = False,
    ) -> tuple[Decision, str]:
        """The decision for a device in this state today, and its digest.

        ``failed_builds`` (build -> sentence) are builds that failed on this device: when
        the cohort's decision offers one of them, the device gets the decision without
        them (the next-best build, or nothing), saying why. Checked after the cohort
        decision, so a device with no failed build costs nothing more.

        Which release a device may have depends on its cohort (model, region,
        deployment date, build and hash, patch level, the day), not on its phone state
        (free space, battery, network only turn an offer into "not now"), and a ready
        offer's reasons do not mention phone state. So the decision is computed once per
        cohort for a phone that passes every check; this device's phone state is then
        compared with the offer's needs; only a device that fails one gets the exact,
        separately cached decision. The result always equals ``decide()``'s.

        With ``device_id``, staged rollouts apply: when the release chosen is under a
        rollout that does not reach this device (``patchline.director.rollout_gate``),
        the device gets the best allowed release not held back from it, or nothing, and
        the reasons say which rollout held what back (or that the device is in it). A
        rollout with a stepping stone that reaches a device on an older build holds back
        every release newer than the stone, so the device is offered the stone first.

        With ``unidentified`` (a device that is not enrolled, e.g. one reading an update
        feed), no release under a rollout not completed is offered: a rollout's phases
        and selection are for enrolled devices, so the release is held back, saying so.

        With ``device_id`` and no failed build, the device's last decision is kept: a
        device that polls again in the same cohort, with the same carrier, on the same
        catalog and day, whose phone still passes the checks its offer needed, gets it
        back without the cohort and rollout look-ups (the steady poll of a fleet).
        """
        day = now.date()
        key = (
            self.catalog.version,
            model,
            region,
            deployed_on,
            build,
            build_sha256,
            security_patch_level,
            day,
        )
        record = None
        if device_id is not None and not failed_builds and not unidentified:
            record = self._devices.get(device_id)
            if record is None:
                record = _DeviceRecord()
                self._devices.put(device_id, record)
            elif (
                record.decided is not None
                and record.key == key
                and record.carrier == carrier
                and record.still_ready(free_bytes, battery_percent, network)
            ):
                return record.decided
        patch_level = date.fromisoformat(security_patch_level)
        # Which phone checks the decision rests on; None once it rests on this device's
        # exact phone state (then it is not kept).
        ready_for: list[tuple[ReleaseFacts, int]] | None = []

        def facts(free: int, battery: int, link: str) -> DeviceFacts:
            return DeviceFacts(
                device_id="cohort",
                model=model,
                region=region,
                deployed_on=deployed_on,
                build=build,
                build_sha256=build_sha256,
                security_patch_level=patch_level,
                free_bytes=free,
                battery_percent=battery,
                network=link,
            )

        def decided(held: frozenset[str]) -> tuple[Decision, str]:
            nonlocal ready_for
            cohort = (key, held)
            cached = self._cohorts.get(cohort)
            if cached is None:
                cached = self._cached_decide(facts(_ANY_SPACE, 100, "wifi"), day, held)
                self._cohorts.put(cohort, cached)
            decision = cached[0]
            offered = decision.release
            if failed_builds and offered is not None and offered.build in failed_builds:
                return self._without_failed(
                    facts(free_bytes, battery_percent, network), day, failed_builds, held
                )
            if decision.action is DecisionAction.NONE:
                return cached
            if (
                decision.action is DecisionAction.INSTALL
                and decision.release is not None
                and decision.length is not None
                and phone_ready(
                    free_bytes, battery_percent, network, decision.release, decision.length
                )
            ):
                if ready_for is not None:
                    ready_for.append((decision.release, decision.length))
                return cached
            ready_for = None
            return self._cached_decide(facts(free_bytes, battery_percent, network), day, held)

        result = self._gated_decision(
            decided,
            model,
            region,
            carrier,
            deployed_on,
            build,
            patch_level,
            device_id,
            unidentified,
        )
        if record is not None and ready_for is not None:
            record.key, record.carrier, record.decided = key, carrier, result
            record.ready_for = tuple(ready_for)
        return result

    def _gated_decision(
        self,
        decided: Callable[[frozenset[str]], tuple[Decision, str]],
        model: str,
        region: str | None,
        carrier: str,
        deployed_on: date | None,
        build: str,
        patch_level: date,
        device_id: str | None,
        unidentified: bool,
    ) -> tuple[Decision, str]:
        """``decided(held)`` once the rollouts have had their say (see ``decide``)."""
        if not self.catalog.rollouts or (device_id is None and not unidentified):
            return decided(frozenset())
        subject = Subject(
            device_id or "",
            region,
            carrier,
            deployed_on,
            build,
            patch_level,
            enrolled=not unidentified,
        )
        result, let_through = apply_rollouts(
            subject,
            model,
            self.catalog.rollouts,
            self.catalog.releases_of(model),
            decided,
            lambda r: r[0].release,
        )
        notes = let_through.notes
        if not notes:
            return result
        noted = (result[1], tuple(notes))
        gated = self._gated.get(noted)
        if gated is None:
            decision = dataclasses.replace(result[0], reasons=(*result[0].reasons, *notes))
            gated = (decision, decision_digest(decision))
            self._gated.put(noted, gated)
        return gated

    def _cached_decide(
        self, facts: DeviceFacts, day: date, held: frozenset[str] = frozenset()
    ) -> tuple[Decision, str]:
        key = (self.catalog.version, cohort_key(facts, day), held)
        cached = self._decisions.get(key)
        if cached is not None:
            return cached
        releases = self.catalog.releases_of(facts.model)
        if held:
            releases = tuple(r for r in releases if r.target_path not in held)
        decision = decide(facts, releases, self.catalog.rules, self.catalog.amendments, day)
        result = (decision, decision_digest(decision))
        self._decisions.put(key, result)
        return result

    def _without_failed(
        self,
        facts: DeviceFacts,
        day: date,
        failed: Mapping[str, str],
        held: frozenset[str] = frozenset(),
    ) -> tuple[Decision, str]:
        """The decision with the builds that failed on the device (and the releases
        ``held`` back from it by rollouts) left out, its reasons naming each failed build
        newer than the running one."""
        excluded = tuple(sorted(failed.items()))
        key = (self.catalog.version, cohort_key(facts, day), excluded, held)
        cached = self._decisions.get(key)
        if cached is not None:
            return cached
        releases = self.catalog.releases_of(facts.model)
        decision = decide(
            facts,
            tuple(r for r in releases if r.build not in failed and r.target_path not in held),
            self.catalog.rules,
            self.catalog.amendments,
            day,
        )
        newer = {r.build for r in releases if is_newer_build(r.build, facts.build)}
        said = tuple(sentence for build, sentence in excluded if build in newer)
        reasons = (*decision.reasons[:1], *said, *decision.reasons[1:])
        decision = dataclasses.replace(decision, reasons=reasons)
        result = (decision, decision_digest(decision))
        self._decisions.put(key, result)
        return result

    def answer(self, device_id: str, decision: Decision, digest: str, now: datetime) -> bytes:
        """The CheckInAnswer body for ``device_id``: signed now, or from the answer cache."""
        record = self._devices.get(device_id)
        if record is None:
            record = _DeviceRecord()
            self._devices.put(device_id, record)
        cached = record.answer
        if (
            cached is not None
            and cached.digest == digest
            and now - cached.signed_at < self._half_validity
        ):
            return cached.body
        version = int(now.timestamp())
        if cached is not None and version <= cached.version:
            version = cached.version + 1
        expires = now.replace(microsecond=0) + self._validity
        target = None
        release = None
        if (
            decision.action is DecisionAction.INSTALL
            and decision.target_path is not None
            and decision.length is not None
            and decision.sha256 is not None
        ):
            target = TargetFile(decision.length, {"sha256": decision.sha256}, decision.target_path)
            release = offered_release(decision)
        md = sign_decision(
            self._signer,
            device_id=device_id,
            action=Action.INSTALL if target is not None else Action.NONE,
            reasons=list(decision.reasons),
            version=version,
            expires=expires,
            target=target,
            full_target=decision.full_target_path if decision.is_delta else None,
            extra={"waiting": decision.action is DecisionAction.WAIT},
            release=release,
        )
        self.signatures += 1
        body = b'{"director":' + md.to_bytes(_COMPACT) + self._tail
        record.answer = SignedAnswer(digest, body, version, expires, now)
        return body


def offered_release(decision: Decision) -> OfferedRelease | None:
    """What an offer installs, as the director signs it: the release's build, patch
    level and update class, and its full image (the one a delta produces)."""
    offered = decision.release
    if offered is None:
        return None
    return OfferedRelease(
        build=offered.build,
        security_patch_level=offered.security_patch_level.isoformat(),
        update_class=offered.update_class.value,
        full=OfferedImage(offered.target_path, offered.length, offered.sha256),
    )
